package flow

import (
	"context"

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
