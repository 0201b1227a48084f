package agent

// This file connects the node's flows to the cluster: every flow is
// advertised in gossip's flow directory (state, outputs, the outputs its
// sources take), and the flow manager resolves flow sources that name
// another node's flow through it. The media of such a source is the other
// node's stream flow/<id>, which the center role pulls over the SRT
// backbone when the flow subscribes to it (center.Missing).

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media/link"
)

// flowSyncEvery is how often the advertised flows are made to match the
// node's (flows removed by a reload, entries lost while alone).
const flowSyncEvery = 5 * time.Second

// flowCluster is the flow manager's view of the cluster (flow.Cluster).
type flowCluster struct{ a *Agent }

func (fc flowCluster) g() *gossip.Cluster { return fc.a.cluster.gossip }

func (fc flowCluster) Self() string { return fc.g().Name() }

func (fc flowCluster) Pulls() bool { return fc.a.cluster.center != nil }

func (fc flowCluster) LookupFlow(id string) (flow.Advert, bool) {
	e, ok := fc.g().LookupFlow(id)
	if !ok || e.Node == fc.Self() { // this node's own flows: the manager knows them better
		return flow.Advert{}, false
	}
	ad := flow.Advert{Node: e.Node, State: lifecycle.State(e.State)}
	for _, o := range e.Outputs {
		ad.Outputs = append(ad.Outputs, o.Name)
	}
	for _, u := range e.Uses {
		ad.Uses = append(ad.Uses, u.Flow)
	}
	return ad, true
}

func (fc flowCluster) DeliveredBy(id string) []string {
	var out []string
	for _, e := range fc.g().Flows() {
		if e.Node == fc.Self() {
			continue
		}
		for _, d := range e.Delivers {
			if d.Flow == id && (d.Node == "" || d.Node == fc.Self()) {
				out = append(out, fmt.Sprintf("output %q of flow %s (node %s)", d.Output, e.ID, e.Node))
			}
		}
	}
	return out
}

func (fc flowCluster) Users(id, output string) []string {
	var out []string
	for _, e := range fc.g().Flows() {
		if e.Node == fc.Self() {
			continue
		}
		for _, u := range e.Uses {
			if u.Flow == id && (output == "" || u.Output == output) {
				out = append(out, fmt.Sprintf("%s (node %s)", e.ID, e.Node))
				break
			}
		}
	}
	return out
}

// wireFlowDirectory makes the flow manager resolve through the cluster
// and advertises its flows, at every change (flowChanged) and every
// flowSyncEvery.
func (a *Agent) wireFlowDirectory() {
	g := a.cluster.gossip
	if g == nil {
		return
	}
	m := a.objects.flows
	m.Cluster = flowCluster{a}
	m.Deliver = a.flowDelivery
	a.add(func(ctx context.Context) error {
		t := time.NewTicker(flowSyncEvery)
		defer t.Stop()
		for {
			a.syncFlows()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}, func() error { return nil })
}

// flowChanged advertises a change of flow id (the flow store's hook).
func (a *Agent) flowChanged(id string) {
	if a.cluster.gossip != nil {
		a.advertiseFlow(id)
	}
}

// advertiseFlow gossips flow id as it is now, or withdraws it.
func (a *Agent) advertiseFlow(id string) {
	g := a.cluster.gossip
	v, ok := a.objects.flows.Get(id)
	if !ok {
		if err := g.UnpublishFlow(id); err != nil {
			a.log.Debug("flow not withdrawn from the cluster", "flow", id, "err", err)
		}
		return
	}
	e := gossip.FlowEntry{ID: id, State: string(v.State)}
	for _, o := range v.Outputs {
		if len(e.Outputs) < 64 {
			e.Outputs = append(e.Outputs, gossip.FlowOutput{Name: o.Name, Type: o.Type})
		}
		if o.Type == flow.OutFlow && o.Flow != "" && len(e.Delivers) < gossip.MaxFlowDelivers {
			e.Delivers = append(e.Delivers, gossip.FlowDelivery{Output: o.Name, Flow: o.Flow, Node: o.Node})
		}
	}
	for _, u := range v.Spec.Uses() {
		e.Uses = append(e.Uses, gossip.FlowRef{Flow: u[0], Output: u[1]})
	}
	for _, src := range []*flow.Source{&v.Spec.Source, v.Spec.Backup} {
		if src != nil && src.IsPush() {
			e.Inputs = append(e.Inputs, gossip.FlowInput{Name: src.Name, Stream: v.Spec.SourceKey(src)})
		}
	}
	if err := g.PublishFlow(e); err != nil {
		a.log.Warn("flow not advertised to the cluster", "flow", id, "err", err)
	}
}

// syncFlows advertises every flow of the node and withdraws the
// advertised ones it no longer has.
func (a *Agent) syncFlows() {
	g := a.cluster.gossip
	have := map[string]bool{}
	for _, v := range a.objects.flows.List() {
		have[v.ID] = true
		a.advertiseFlow(v.ID)
	}
	for _, e := range g.Flows() {
		if e.Node == g.Name() && !have[e.ID] {
			a.advertiseFlow(e.ID)
		}
	}
}

// flowDelivery is the backbone target of a flow output delivering to flow
// id (on node, when set): the backbone listener of the node running it,
// publishing into the stream of that flow's primary push source, with the
// backbone key, latency from the RTT and DSCP, as an edge's uplink.
func (a *Agent) flowDelivery(id, node string) (link.Target, error) {
	cs := &a.cluster
	g := cs.gossip
	e, ok := g.LookupFlow(id)
	switch {
	case !ok:
		return link.Target{}, fmt.Errorf("no node of the cluster has a flow %q (yet)", id)
	case e.Node == g.Name():
		return link.Target{}, fmt.Errorf("flow %q runs on this node: give it a source of type flow naming this flow instead", id)
	case node != "" && e.Node != node:
		return link.Target{}, fmt.Errorf("flow %q is on node %s, not on node %s", id, e.Node, node)
	case len(e.Inputs) == 0:
		return link.Target{}, fmt.Errorf("flow %q on node %s has no rtmp-push or srt-listener source to deliver to", id, e.Node)
	}
	m, ok := g.Member(e.Node)
	if !ok || m.Meta.Addrs.Backbone == "" {
		return link.Target{}, fmt.Errorf("node %s of flow %q has no backbone listener (it is an edge): run that flow on a center", e.Node, id)
	}
	cfg := a.config()
	rtt, _ := g.RTT(e.Node)
	pass := ""
	if p := cs.backbonePass.Load(); p != nil {
		pass = *p
	}
	return link.Target{
		URL:             "srt://" + m.Meta.Addrs.Backbone + "?streamid=" + url.QueryEscape("publish:"+e.Inputs[0].Stream),
		Passphrase:      pass,
		PBKeyLen:        32,
		Latency:         cfg.Cluster.Latency.For(rtt),
		PeerIdleTimeout: config.BackboneIdleTimeout,
		DSCP:            cfg.Cluster.DSCPMark(),
		ConnectTimeout:  link.ConnectTimeoutFor(rtt),
	}, nil
}
