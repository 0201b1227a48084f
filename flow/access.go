package flow

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/netutil"
)

// Protocols a publisher or player uses, as the access gate knows them.
const (
	ProtoRTMP    = "rtmp"
	ProtoHTTPFLV = "httpflv"
	ProtoHLS     = "hls"
	ProtoWebRTC  = "webrtc"
	ProtoSRT     = "srt"
)

// playerOutputs are the output types that serve each player protocol.
var playerOutputs = map[string][]string{
	ProtoRTMP:    {OutRTMPPull},
	ProtoHTTPFLV: {OutHTTPFLV},
	// HLS is served on the HTTP-FLV listener: a flow's HTTP-FLV output
	// (its allowlist, its cut state) admits HLS players too
	ProtoHLS: {OutHTTPFLV},
	// so is WebRTC (WHEP)
	ProtoWebRTC: {OutHTTPFLV},
	ProtoSRT:    {OutSRTListener},
}

// allows reports whether remote is in the allowlist (empty: everyone).
// The entries were validated when the flow was made.
func allows(entries []string, remote net.Addr) bool {
	if len(entries) == 0 {
		return true
	}
	l, err := netutil.ParseAllowList(entries)
	return err == nil && l.AllowsNetAddr(remote)
}

// Authorize is the flows' gate on a publish or play the node's listeners
// admitted (after the node's own allowlist and signed URL):
//
//   - a publish to the stream of a flow's push source (rtmp-push,
//     srt-listener) needs the publisher's address in that source's allow;
//   - a play of flow/<id> needs the player's address in the allow of an
//     output that serves its protocol (rtmp-pull: RTMP, httpflv: HTTP-FLV,
//     srt-listener: SRT). A flow without such an output refuses players of
//     that protocol. With ProtoTCP (RTMP or HTTP-FLV, not known which) the
//     address must be in every rtmp-pull and httpflv output's allow, so an
//     output's allowlist cannot be bypassed through the other protocol.
//     An output cut for its max_bitrate refuses new players with the
//     reason.
//
// The error says which flow, source or output refused and why.
func (m *Manager) Authorize(req media.Access) (err error) {
	m.reg.Read(func() { err = m.authorizeLocked(req.Action, req.Protocol, req.Key, req.Remote) })
	return err
}

func (m *Manager) authorizeLocked(action, proto, key string, remote net.Addr) error {
	if action == "publish" {
		var err error
		m.reg.EachLocked(func(e *entry) {
			id, s := e.ID, &e.Obj.spec
			for _, src := range s.sources() {
				if src.Type != SrcRTMPPush && src.Type != SrcSRTListener {
					continue
				}
				if err == nil && s.SourceKey(src) == key && !allows(src.Allow, remote) {
					err = fmt.Errorf("address %s is not in the allow list of flow %q source %q", addrHost(remote), id, src.Name)
				}
			}
		})
		return err
	}
	id, ok := strings.CutPrefix(key, "flow/")
	if !ok {
		return nil
	}
	e := m.reg.GetLocked(id)
	if e == nil {
		return nil // not a flow of this node (yet): the hub answers
	}
	types := playerOutputs[proto]
	var serving []*Output
	for i := range e.Obj.spec.Outputs {
		if o := &e.Obj.spec.Outputs[i]; slices.Contains(types, o.Type) {
			serving = append(serving, o)
		}
	}
	if len(serving) == 0 {
		return fmt.Errorf("flow %q has no %s output: players of it use %s", id, strings.Join(types, " or "), e.Obj.spec.playerProtocols())
	}
	cutWhy := func(o *Output) string {
		if e.Obj.run == nil {
			return ""
		}
		return e.Obj.run.OutputCut(o.Name)
	}
	var cutErr error
	for _, o := range serving {
		if allows(o.Allow, remote) {
			why := cutWhy(o)
			if why == "" {
				return nil
			}
			cutErr = fmt.Errorf("flow %q output %q: %s", id, o.Name, why)
		}
	}
	if cutErr != nil {
		return cutErr
	}
	names := make([]string, len(serving))
	for i, o := range serving {
		names[i] = o.Name
	}
	return fmt.Errorf("address %s is not in the allow list of flow %q output %s", addrHost(remote), id, quoteAll(names))
}

// playerProtocols names the outputs players may use, for a refusal.
func (s *Spec) playerProtocols() string {
	var out []string
	for _, o := range s.Outputs {
		switch o.Type {
		case OutRTMPPull, OutHTTPFLV, OutSRTListener:
			if !slices.Contains(out, o.Type) {
				out = append(out, o.Type)
			}
		}
	}
	if len(out) == 0 {
		return "none (the flow only pushes)"
	}
	return strings.Join(out, ", ")
}

func addrHost(a net.Addr) string {
	if a == nil {
		return "(unknown)"
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
