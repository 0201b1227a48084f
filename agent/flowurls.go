package agent

import (
	"net"
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/srt"
)

// flowURLTTL is how long the signed URLs of a flow's answer last.
const flowURLTTL = 6 * time.Hour // as locate's signed ingest URLs

// flowURLs are the URLs of spec's push sources and play outputs on this
// node's advertised addresses (its listeners' when it is not in a
// cluster), signed when [auth] asks for tokens.
func (a *Agent) flowURLs(spec *flow.Spec) *flow.URLs {
	ad := a.listenerAddrs()
	pol := a.access.Load()
	exp := time.Now().Add(flowURLTTL).UTC().Truncate(time.Second)
	signed := false
	token := func(action, key string) string {
		q := pol.Sign(action, key, exp)
		if q == "" {
			return ""
		}
		signed = true
		return "?" + q
	}
	out := &flow.URLs{}
	for _, src := range []*flow.Source{&spec.Source, spec.Backup} {
		if src == nil {
			continue
		}
		key := spec.SourceKey(src)
		switch src.Type {
		case flow.SrcRTMPPush:
			if ad.RTMP != "" {
				out.Sources = append(out.Sources, flow.URL{Name: src.Name, Protocol: "rtmp",
					URL: "rtmp://" + ad.RTMP + "/" + key + token(auth.ActionPublish, key)})
			}
		case flow.SrcSRTListener:
			if ad.SRT != "" {
				out.Sources = append(out.Sources, flow.URL{Name: src.Name, Protocol: "srt",
					URL: "srt://" + ad.SRT + "?streamid=" + srt.URLParam("publish:"+key+token(auth.ActionPublish, key))})
			}
		}
	}
	key := spec.Key()
	for _, o := range spec.Outputs {
		switch {
		case o.Type == flow.OutRTMPPull && ad.RTMP != "":
			out.Outputs = append(out.Outputs, flow.URL{Name: o.Name, Protocol: "rtmp",
				URL: "rtmp://" + ad.RTMP + "/" + key + token(auth.ActionPlay, key)})
		case o.Type == flow.OutHTTPFLV && ad.HTTPFLV != "":
			out.Outputs = append(out.Outputs, flow.URL{Name: o.Name, Protocol: "http-flv",
				URL: "http://" + ad.HTTPFLV + "/" + key + ".flv" + token(auth.ActionPlay, key)})
		case o.Type == flow.OutSRTListener && ad.SRT != "":
			out.Outputs = append(out.Outputs, flow.URL{Name: o.Name, Protocol: "srt",
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

// listenerAddrs are the media listeners' addresses as the cluster is told
// them, or as bound on a node outside a cluster.
func (a *Agent) listenerAddrs() gossip.Addrs {
	if g := a.cluster.gossip; g != nil {
		return g.LocalMeta().Addrs
	}
	var ad gossip.Addrs
	str := func(addr net.Addr) string {
		if addr == nil {
			return ""
		}
		return addr.String()
	}
	if a.rtmp != nil {
		ad.RTMP = str(a.rtmp.Addr())
	}
	if a.srt != nil {
		ad.SRT = str(a.srt.Addr())
	}
	if a.httpflv != nil {
		ad.HTTPFLV = str(a.httpflv.Addr())
	}
	return ad
}
