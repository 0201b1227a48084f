package flow

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media/srt"
)

// SRTStream is what a flow asks of the node's SRT listener for one stream
// key: the passphrase a publisher of its srt-listener source must use,
// the passphrase a reader of its srt-listener outputs must use, and the
// latency of those connections. The agent hands these
// to the listener as per-stream options, so each applies to that flow's
// streamid only.
type SRTStream struct {
	Key               string
	Flow              string // the flow that asks
	PublishPassphrase string
	ReadPassphrase    string
	Latency           time.Duration
}

// SRTStreams returns the listener options the flow's srt-listener source,
// backup and outputs need (none for those without passphrase or latency).
func (s *Spec) SRTStreams() []SRTStream {
	var out []SRTStream
	for _, src := range s.sources() {
		if src.Type == SrcSRTListener && (src.Passphrase != "" || src.LatencyMS > 0) {
			out = append(out, SRTStream{Key: s.SourceKey(src), Flow: s.ID, PublishPassphrase: src.Passphrase,
				Latency: time.Duration(src.LatencyMS) * time.Millisecond})
		}
	}
	for i := range s.Outputs {
		if o := &s.Outputs[i]; o.Type == OutSRTListener && (o.Passphrase != "" || o.LatencyMS > 0) {
			// validate made every srt-listener output agree
			return append(out, SRTStream{Key: s.Key(), Flow: s.ID, ReadPassphrase: o.Passphrase,
				Latency: time.Duration(o.LatencyMS) * time.Millisecond})
		}
	}
	return out
}

// checkSRTOutputs refuses srt-listener outputs that disagree on passphrase
// or latency: their players all read flow/<id> on the one listener, which
// cannot tell them apart.
func (s *Spec) checkSRTOutputs() error {
	first := -1
	for i := range s.Outputs {
		o := &s.Outputs[i]
		if o.Type != OutSRTListener {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		f := &s.Outputs[first]
		if o.Passphrase != f.Passphrase || o.LatencyMS != f.LatencyMS {
			return lifecycle.Invalidf(fmt.Sprintf("outputs[%d].passphrase", i),
				"players of every srt-listener output read %s on the node's one SRT listener: give outputs[%d] the passphrase and latency of outputs[%d]", s.Key(), i, first)
		}
	}
	return nil
}

// checkSRTLocked refuses a spec whose SRT listener options for a stream
// differ from another flow's for the same stream.
func (m *Manager) checkSRTLocked(s *Spec) error {
	for _, want := range s.SRTStreams() {
		var err error
		m.reg.EachLocked(func(e *entry) {
			if e.ID == s.ID || err != nil {
				return
			}
			for _, have := range e.Obj.spec.SRTStreams() {
				if have.Key == want.Key {
					have.Flow = want.Flow
					if have != want && err == nil {
						err = lifecycle.Conflictf(srtField(s, want.Key), "flow %q already sets the SRT passphrase or latency of stream %s otherwise: use another stream, or the same settings", e.ID, want.Key)
					}
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// srtField is the field of s that sets the SRT options of stream key:
// its backup's passphrase when only the backup uses key, else the
// source's.
func srtField(s *Spec, key string) string {
	if s.Backup != nil && s.SourceKey(s.Backup) == key && s.SourceKey(&s.Source) != key {
		return "backup.passphrase"
	}
	return "source.passphrase"
}

// SRTOptions returns what a flow sets for an SRT connection to the
// node's listener: the passphrase and latency of the srt-listener source
// whose stream a publisher pushes to (action "publish"), or of the
// srt-listener output a reader of flow/<id> plays (action "read"). ok is
// false when no flow sets either. It does not block: the SRT listener
// asks inside the handshake.
func (m *Manager) SRTOptions(action, key string) (pass string, latency time.Duration, ok bool) {
	m.reg.Read(func() { pass, latency, ok = m.srtOptionsLocked(action, key) })
	return pass, latency, ok
}

// SRTStreamOptions is SRTOptions as the SRT listener asks for them
// (srt.Config.StreamOptionsFor): the passphrase is the reader's or the
// publisher's, by action.
func (m *Manager) SRTStreamOptions(action, key string) (srt.StreamOptions, bool) {
	pass, lat, ok := m.SRTOptions(action, key)
	o := srt.StreamOptions{Latency: lat}
	if action == srt.ActionRead {
		o.ReadPassphrase = pass
	} else {
		o.PublishPassphrase = pass
	}
	return o, ok
}

func (m *Manager) srtOptionsLocked(action, key string) (string, time.Duration, bool) {
	set := func(p string, ms int) (string, time.Duration, bool) {
		return p, time.Duration(ms) * time.Millisecond, p != "" || ms > 0
	}
	if action == "publish" {
		var pass string
		var ms int
		var ok bool
		m.reg.EachLocked(func(e *entry) {
			for _, src := range e.Obj.spec.sources() {
				if !ok && src.Type == SrcSRTListener && e.Obj.spec.SourceKey(src) == key {
					pass, ms, ok = src.Passphrase, src.LatencyMS, true
				}
			}
		})
		if !ok {
			return "", 0, false
		}
		return set(pass, ms)
	}
	id, isFlow := strings.CutPrefix(key, "flow/")
	if e := m.reg.GetLocked(id); isFlow && e != nil {
		for _, o := range e.Obj.spec.Outputs {
			if o.Type == OutSRTListener {
				return set(o.Passphrase, o.LatencyMS)
			}
		}
	}
	return "", 0, false
}
