package agent

import (
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/media/link"
)

// wireFlowDirectory makes the flow manager resolve flows and deliveries
// through the cluster and advertises its flows (flow.Directory).
func (a *Agent) wireFlowDirectory() {
	cs := &a.cluster
	if cs.gossip == nil {
		return
	}
	d := flow.NewDirectory(cs.gossip, a.objects.flows, cs.center != nil, func(rtt time.Duration) link.Target {
		cfg := a.config()
		return link.Target{Passphrase: *cs.backbonePass.Load(), Latency: cfg.Cluster.Latency.For(rtt),
			PeerIdleTimeout: config.BackboneIdleTimeout, DSCP: cfg.Cluster.DSCPMark()}
	}, a.log)
	d.Wire(a.objects.flows)
	a.objects.dir = d
	a.add(d.Run, func() error { return nil })
}
