package flow

import (
	"context"
	"fmt"

	"github.com/relaymesh/relaymesh/media/link"
)

// Deliver returns the backbone target of a flow output that delivers to
// another node's flow (flowID, on node when set): that node's backbone
// listener, publishing into the flow's push source stream, with the
// backbone key, the latency made from the RTT and the DSCP mark. An error
// says why it cannot be reached now; the output retries with backoff.
type Deliver func(flowID, node string) (link.Target, error)

// newDelivery starts the push of the flow's stream to the flow o names.
// The target is cluster-internal (a member's backbone listener), so the
// outbound fetch policy of user URLs does not apply to it.
func (r *Runner) newDelivery(o *Output) (*link.Pusher, *worker) {
	flowID, node := o.Flow, o.Node
	p := link.NewPusher(r.hub, link.PushConfig{Key: r.spec.Key(), Persistent: true,
		Next: func(int, error) (link.Target, error) { return r.deliver(flowID, node) }},
		r.log.With("output", o.Name, "to_flow", flowID))
	w := &worker{run: func(ctx context.Context) { p.Run(ctx) }}
	r.set(w, true)
	return p, w
}

// IsPush reports whether publishers push to the source (rtmp-push,
// srt-listener): the sources another node's flow output can deliver into.
func (src *Source) IsPush() bool { return src.Type == SrcRTMPPush || src.Type == SrcSRTListener }

// DeliveryInput is the source flow outputs of other flows deliver into:
// the first push source, primary first (nil: none).
func (s *Spec) DeliveryInput() *Source {
	for _, src := range s.sources() {
		if src.IsPush() {
			return src
		}
	}
	return nil
}

// deliverersLocked names the flow outputs, on this node or any other,
// that deliver into flow id.
func (m *Manager) deliverersLocked(id string) []string {
	self := ""
	if m.Cluster != nil {
		self = m.Cluster.Self()
	}
	var out []string
	m.reg.EachLocked(func(e *entry) {
		if e.ID == id {
			return
		}
		for _, o := range e.Obj.spec.Outputs {
			if o.Type == OutFlow && o.Flow == id && (o.Node == "" || o.Node == self) {
				out = append(out, fmt.Sprintf("output %q of flow %s (this node)", o.Name, e.ID))
			}
		}
	})
	if m.Cluster != nil {
		out = append(out, m.Cluster.DeliveredBy(id)...)
	}
	return out
}
