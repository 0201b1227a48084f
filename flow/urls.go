package flow

import (
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/srt"
)

// URLs are the addresses a user needs for a flow, on the node's
// advertised addresses: where its push sources are published to and
// where its play outputs are read from, signed when the node's auth asks
// for it.
type URLs struct {
	Sources []URL `json:"sources,omitempty"`
	Outputs []URL `json:"outputs,omitempty"`
	// Expires is when the signed URLs' tokens run out (nil: unsigned).
	Expires *time.Time `json:"expires,omitempty"`
}

// URL is one address of a source or output, by its name.
type URL struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"` // rtmp, srt or http-flv
	URL      string `json:"url"`
}

// URLTTL is how long the signed URLs of a flow's answer last (as
// locate's signed ingest URLs).
const URLTTL = 6 * time.Hour

// URLsFor are the URLs of spec's push sources and play outputs on the
// listeners at ad (host:port, "" for a listener that is off), signed by
// pol (nil: none) until exp where it asks for tokens; nil when there are
// none.
func URLsFor(spec *Spec, ad gossip.Addrs, pol *auth.Policy, exp time.Time) *URLs {
	exp = exp.UTC().Truncate(time.Second)
	signed := false
	token := func(action, key string) string {
		q := pol.Sign(action, key, exp)
		if q == "" {
			return ""
		}
		signed = true
		return "?" + q
	}
	out := &URLs{}
	for _, src := range []*Source{&spec.Source, spec.Backup} {
		if src == nil {
			continue
		}
		key := spec.SourceKey(src)
		switch {
		case src.Type == SrcRTMPPush && ad.RTMP != "":
			out.Sources = append(out.Sources, URL{Name: src.Name, Protocol: "rtmp",
				URL: "rtmp://" + ad.RTMP + "/" + key + token(auth.ActionPublish, key)})
		case src.Type == SrcSRTListener && ad.SRT != "":
			out.Sources = append(out.Sources, URL{Name: src.Name, Protocol: "srt",
				URL: "srt://" + ad.SRT + "?streamid=" + srt.URLParam("publish:"+key+token(auth.ActionPublish, key))})
		}
	}
	key := spec.Key()
	for _, o := range spec.Outputs {
		switch {
		case o.Type == OutRTMPPull && ad.RTMP != "":
			out.Outputs = append(out.Outputs, URL{Name: o.Name, Protocol: "rtmp",
				URL: "rtmp://" + ad.RTMP + "/" + key + token(auth.ActionPlay, key)})
		case o.Type == OutHTTPFLV && ad.HTTPFLV != "":
			out.Outputs = append(out.Outputs, URL{Name: o.Name, Protocol: "http-flv",
				URL: "http://" + ad.HTTPFLV + "/" + key + ".flv" + token(auth.ActionPlay, key)})
		case o.Type == OutSRTListener && ad.SRT != "":
			out.Outputs = append(out.Outputs, URL{Name: o.Name, Protocol: "srt",
				URL: "srt://" + ad.SRT + "?streamid=" + srt.URLParam("read:"+key+token(auth.ActionPlay, key))})
		}
	}
	if signed {
		out.Expires = &exp
	}
	if len(out.Sources) == 0 && len(out.Outputs) == 0 {
		return nil
	}
	return out
}
