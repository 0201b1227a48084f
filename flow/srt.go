package flow

import (
	"strings"
	"time"
)

// SRTOptions returns what a flow sets for an SRT connection to the
// node's listener: the passphrase and latency of the srt-listener source
// whose stream a publisher pushes to (action "publish"), or of the
// srt-listener output a reader of flow/<id> plays (action "read"). ok is
// false when no flow sets either. It does not block: the SRT listener
// asks inside the handshake.
func (m *Manager) SRTOptions(action, key string) (pass string, latency time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := func(p string, ms int) (string, time.Duration, bool) {
		return p, time.Duration(ms) * time.Millisecond, p != "" || ms > 0
	}
	if action == "publish" {
		for _, e := range m.flows {
			for _, src := range e.spec.sources() {
				if src.Type == SrcSRTListener && e.spec.SourceKey(src) == key {
					return set(src.Passphrase, src.LatencyMS)
				}
			}
		}
		return "", 0, false
	}
	id, isFlow := strings.CutPrefix(key, "flow/")
	if e := m.flows[id]; isFlow && e != nil {
		for _, o := range e.spec.Outputs {
			if o.Type == OutSRTListener {
				return set(o.Passphrase, o.LatencyMS)
			}
		}
	}
	return "", 0, false
}
