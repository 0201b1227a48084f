package flow

// This file connects the node's flows to the cluster: every flow is
// advertised in gossip's flow directory (state, outputs, the outputs its
// sources take), and the flow manager resolves flow sources that name
// another node's flow through it. The media of such a source is the other
// node's stream flow/<id>, which the center role pulls over the SRT
// backbone when the flow subscribes to it (center.Missing).

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media/link"
)

// SyncEvery is how often a Directory makes the advertised flows match the
// node's (flows removed by a reload, entries lost while alone).
const SyncEvery = 5 * time.Second

// Gossip is what a Directory needs of the cluster (*gossip.Cluster).
type Gossip interface {
	Name() string
	LookupFlow(id string) (gossip.FlowEntry, bool)
	Flows() []gossip.FlowEntry
	PublishFlow(e gossip.FlowEntry) error
	UnpublishFlow(id string) error
	Member(name string) (gossip.Member, bool)
	RTT(node string) (time.Duration, bool)
}

// Local is the node's own flows (*Manager).
type Local interface {
	Get(id string) (View, bool)
	List() []View
}

// Directory is the cluster-wide view of flows: it advertises the node's
// flows through gossip and resolves other nodes' flows for the manager
// (it is the manager's Cluster and, with Deliver, its Deliver).
type Directory struct {
	g     Gossip
	local Local
	pulls bool
	// backbone gives the key, latency, DSCP and idle timeout of a
	// backbone link to a node at rtt (Deliver adds the URL, the key
	// length and the connect timeout).
	backbone func(rtt time.Duration) link.Target
	log      *slog.Logger
}

// NewDirectory returns the directory of the flows local (this node's) and
// of the other nodes g knows. pulls says whether this node pulls other
// nodes' streams over the backbone (it runs the center role); backbone
// gives the link settings of a delivery to a node at rtt.
func NewDirectory(g Gossip, local Local, pulls bool, backbone func(rtt time.Duration) link.Target, log *slog.Logger) *Directory {
	return &Directory{g: g, local: local, pulls: pulls, backbone: backbone, log: log}
}

// Wire makes m resolve flow sources and deliveries through d.
func (d *Directory) Wire(m *Manager) {
	m.Cluster = d
	m.Deliver = d.Deliver
}

// Self is this node's name (Cluster).
func (d *Directory) Self() string { return d.g.Name() }

// Pulls reports whether this node pulls other nodes' streams (Cluster).
func (d *Directory) Pulls() bool { return d.pulls }

// LookupFlow returns what another node advertises of flow id (Cluster);
// this node's own flows are not looked up here: the manager knows them
// better.
func (d *Directory) LookupFlow(id string) (Advert, bool) {
	e, ok := d.g.LookupFlow(id)
	if !ok || e.Node == d.Self() {
		return Advert{}, false
	}
	ad := Advert{Node: e.Node, State: lifecycle.State(e.State)}
	for _, o := range e.Outputs {
		ad.Outputs = append(ad.Outputs, o.Name)
	}
	for _, u := range e.Uses {
		ad.Uses = append(ad.Uses, u.Flow)
	}
	return ad, true
}

// DeliveredBy names the other nodes' flow outputs that deliver into flow
// id (Cluster).
func (d *Directory) DeliveredBy(id string) []string {
	var out []string
	for _, e := range d.g.Flows() {
		if e.Node == d.Self() {
			continue
		}
		for _, dl := range e.Delivers {
			if dl.Flow == id && (dl.Node == "" || dl.Node == d.Self()) {
				out = append(out, fmt.Sprintf("output %q of flow %s (node %s)", dl.Output, e.ID, e.Node))
			}
		}
	}
	return out
}

// Users names the other nodes' flows whose sources take output of flow id
// ("" = any of its outputs) (Cluster).
func (d *Directory) Users(id, output string) []string {
	var out []string
	for _, e := range d.g.Flows() {
		if e.Node == d.Self() {
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

// Run advertises the node's flows every SyncEvery until ctx ends.
func (d *Directory) Run(ctx context.Context) error {
	t := time.NewTicker(SyncEvery)
	defer t.Stop()
	for {
		d.Sync()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Advertise gossips flow id as it is now, or withdraws it when this node
// has no such flow (the flow store's hook).
func (d *Directory) Advertise(id string) {
	v, ok := d.local.Get(id)
	if !ok {
		if err := d.g.UnpublishFlow(id); err != nil {
			d.log.Debug("flow not withdrawn from the cluster", "flow", id, "err", err)
		}
		return
	}
	if err := d.g.PublishFlow(EntryOf(v)); err != nil {
		d.log.Warn("flow not advertised to the cluster", "flow", id, "err", err)
	}
}

// EntryOf is what the cluster is told of flow v: its state, outputs (at
// most 64), the delivering outputs (at most gossip.MaxFlowDelivers), the
// flows its sources take and its push sources.
func EntryOf(v View) gossip.FlowEntry {
	e := gossip.FlowEntry{ID: v.ID, State: string(v.State)}
	for _, o := range v.Outputs {
		if len(e.Outputs) < 64 {
			e.Outputs = append(e.Outputs, gossip.FlowOutput{Name: o.Name, Type: o.Type})
		}
		if o.Type == OutFlow && o.Flow != "" && len(e.Delivers) < gossip.MaxFlowDelivers {
			e.Delivers = append(e.Delivers, gossip.FlowDelivery{Output: o.Name, Flow: o.Flow, Node: o.Node})
		}
	}
	for _, u := range v.Spec.Uses() {
		e.Uses = append(e.Uses, gossip.FlowRef{Flow: u[0], Output: u[1]})
	}
	for _, src := range []*Source{&v.Spec.Source, v.Spec.Backup} {
		if src != nil && src.IsPush() {
			e.Inputs = append(e.Inputs, gossip.FlowInput{Name: src.Name, Stream: v.Spec.SourceKey(src)})
		}
	}
	return e
}

// Sync advertises every flow of the node and withdraws the advertised
// ones it no longer has.
func (d *Directory) Sync() {
	have := map[string]bool{}
	for _, v := range d.local.List() {
		have[v.ID] = true
		d.Advertise(v.ID)
	}
	for _, e := range d.g.Flows() {
		if e.Node == d.Self() && !have[e.ID] {
			d.Advertise(e.ID)
		}
	}
}

// Deliver is the backbone target of a flow output delivering to flow id
// (on node, when set): the backbone listener of the node running it,
// publishing into the stream of that flow's primary push source, with the
// backbone key, latency from the RTT and DSCP, as an edge's uplink.
func (d *Directory) Deliver(id, node string) (link.Target, error) {
	e, ok := d.g.LookupFlow(id)
	switch {
	case !ok:
		return link.Target{}, fmt.Errorf("no node of the cluster has a flow %q (yet)", id)
	case e.Node == d.Self():
		return link.Target{}, fmt.Errorf("flow %q runs on this node: give it a source of type flow naming this flow instead", id)
	case node != "" && e.Node != node:
		return link.Target{}, fmt.Errorf("flow %q is on node %s, not on node %s", id, e.Node, node)
	case len(e.Inputs) == 0:
		return link.Target{}, fmt.Errorf("flow %q on node %s has no rtmp-push or srt-listener source to deliver to", id, e.Node)
	}
	m, ok := d.g.Member(e.Node)
	if !ok || m.Meta.Addrs.Backbone == "" {
		return link.Target{}, fmt.Errorf("node %s of flow %q has no backbone listener (it is an edge): run that flow on a center", e.Node, id)
	}
	rtt, _ := d.g.RTT(e.Node)
	t := d.backbone(rtt)
	t.URL = "srt://" + m.Meta.Addrs.Backbone + "?streamid=" + url.QueryEscape("publish:"+e.Inputs[0].Stream)
	t.PBKeyLen = 32
	t.ConnectTimeout = link.ConnectTimeoutFor(rtt)
	return t, nil
}
