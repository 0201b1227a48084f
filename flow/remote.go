package flow

// This file resolves flow sources: a source of type flow names another
// flow (by its id, unique in the cluster) and one of its outputs. That flow
// may run on this node or on any other: the cluster advertises every
// node's flows (gossip's flow directory), and the other node's stream
// (flow/<id>) reaches this one over the SRT backbone, pulled on demand by
// the center role like any stream a player asks for here. A source whose
// flow is missing, not started or without the output is not refused: it
// shows that state and reason, and connects by itself once the flow is
// there.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/relaymesh/relaymesh/lifecycle"
)

// Advert is what the cluster says of a flow.
type Advert struct {
	Node    string
	State   lifecycle.State
	Outputs []string
	// Uses are the flows its sources take (cycle check, cycle.go).
	Uses []string
}

// Cluster is what the manager needs from the cluster for flow sources
// that name other nodes' flows (nil: a node alone).
type Cluster interface {
	// Self is this node's name.
	Self() string
	// LookupFlow returns the advertised flow id of another live node.
	LookupFlow(id string) (Advert, bool)
	// Users names the flows of other nodes whose sources take output of
	// flow id ("" = any of its outputs), as "B (node fra)".
	Users(id, output string) []string
	// DeliveredBy names the flow outputs of other nodes that deliver into
	// flow id (deliver.go), as `output "o" of flow A (node sin)`.
	DeliveredBy(id string) []string
	// Pulls reports whether this node pulls other nodes' streams over
	// the backbone (it runs the center role).
	Pulls() bool
}

// Resolution states of a flow source.
const (
	RefConnected  = "connected"   // the named flow runs and its media arrives
	RefWaiting    = "waiting"     // the named flow runs; its media has not arrived (yet)
	RefNotFound   = "not_found"   // no node advertises the named flow
	RefNotStarted = "not_started" // the flow exists and does not run
	RefNoOutput   = "no_output"   // the flow has no output of that name
	RefOtherNode  = "other_node"  // the source names a node and the flow is on another
)

// Resolution is what a flow source resolved to.
type Resolution struct {
	State  string `json:"state"`
	Node   string `json:"node,omitempty"` // the node the named flow runs on
	Reason string `json:"reason,omitempty"`
}

// Ready reports whether the source can deliver (connected or waiting
// for media that is on its way).
func (r Resolution) Ready() bool { return r.State == RefConnected || r.State == RefWaiting }

// Resolve says what flow source src resolves to: ad is the named flow
// (found false: no node has it), local whether it runs on this node,
// pulls whether this node pulls other nodes' streams, live whether the
// source's media arrives.
func Resolve(src *Source, ad Advert, found, local, pulls, live bool) Resolution {
	where := "this node"
	if !local {
		where = "node " + ad.Node
	}
	switch {
	case !found:
		return Resolution{State: RefNotFound, Reason: fmt.Sprintf("no node of the cluster has a flow %q (yet): the source connects by itself when it appears", src.Flow)}
	case src.Node != "" && src.Node != ad.Node:
		return Resolution{State: RefOtherNode, Node: ad.Node, Reason: fmt.Sprintf("flow %q is on %s, not on node %s: set node to %s or remove it", src.Flow, where, src.Node, ad.Node)}
	case !slices.Contains(ad.Outputs, src.Output):
		have := "none"
		if len(ad.Outputs) > 0 {
			have = strings.Join(ad.Outputs, ", ")
		}
		return Resolution{State: RefNoOutput, Node: ad.Node, Reason: fmt.Sprintf("flow %q on %s has no output %q (it has %s): the source connects by itself when it is added", src.Flow, where, src.Output, have)}
	case !ad.State.Active():
		return Resolution{State: RefNotStarted, Node: ad.Node, Reason: fmt.Sprintf("flow %q on %s is %s: the source connects by itself when it is started", src.Flow, where, ad.State)}
	case live:
		return Resolution{State: RefConnected, Node: ad.Node}
	case !local && !pulls:
		return Resolution{State: RefWaiting, Node: ad.Node, Reason: fmt.Sprintf("flow %q runs on node %s, and this node does not pull other nodes' streams (it is an edge): run this flow on a center or standalone node", src.Flow, ad.Node)}
	case ad.State != lifecycle.Running:
		return Resolution{State: RefWaiting, Node: ad.Node, Reason: fmt.Sprintf("flow %q on %s is %s", src.Flow, where, ad.State)}
	case local:
		return Resolution{State: RefWaiting, Node: ad.Node, Reason: fmt.Sprintf("flow %q runs here and carries no media", src.Flow)}
	}
	return Resolution{State: RefWaiting, Node: ad.Node, Reason: fmt.Sprintf("flow %q runs on node %s: no media from it over the backbone (yet)", src.Flow, ad.Node)}
}

// lookupLocked is the create-time check of a flow source's reference: a
// missing flow or output is a warning in the answer (the two flows are
// created in either order), never a refusal.
func (m *Manager) lookupLocked(string, string) error { return nil }

// advertLocked is what this node or the cluster knows of flow id.
func (m *Manager) advertLocked(id string) (ad Advert, found, local bool) {
	self := ""
	if m.Cluster != nil {
		self = m.Cluster.Self()
	}
	if e := m.reg.GetLocked(id); e != nil {
		ad = Advert{Node: self, State: e.State()}
		for _, o := range e.Obj.spec.Outputs {
			ad.Outputs = append(ad.Outputs, o.Name)
		}
		for _, u := range e.Obj.spec.Uses() {
			ad.Uses = append(ad.Uses, u[0])
		}
		return ad, true, true
	}
	if m.Cluster == nil {
		return Advert{}, false, false
	}
	ad, found = m.Cluster.LookupFlow(id)
	return ad, found, false
}

// annotateLocked adds to v what the spec alone does not say: its URLs,
// and what every flow source resolves to, into its status (running flows)
// and, for a reference that cannot deliver, into its warnings and, for
// the active source, its reason.
func (m *Manager) annotateLocked(v *View) {
	if m.URLs != nil {
		v.URLs = m.URLs(&v.Spec)
	}
	pulls := m.Cluster != nil && m.Cluster.Pulls()
	for i, src := range v.Spec.sources() {
		if src.Type != SrcFlow {
			continue
		}
		live := false
		if v.Status != nil && i < len(v.Status.Sources) {
			live = v.Status.Sources[i].Live
		}
		ad, found, local := m.advertLocked(src.Flow)
		r := Resolve(src, ad, found, local, pulls, live)
		if v.Status != nil && i < len(v.Status.Sources) {
			v.Status.Sources[i].Ref = &r
			if v.Reason == "" && r.State != RefConnected && v.Status.Active == src.Name {
				v.Reason = fmt.Sprintf("source %q: %s", src.Name, r.Reason)
			}
		}
		if !r.Ready() {
			v.Warnings = append(v.Warnings, fmt.Sprintf("source %q: %s", src.Name, r.Reason))
		}
	}
	for _, o := range v.Spec.Outputs {
		if o.Type != OutFlow || o.Flow == "" {
			continue
		}
		switch ad, found, local := m.advertLocked(o.Flow); {
		case !found:
			v.Warnings = append(v.Warnings, fmt.Sprintf("output %q: no node of the cluster has a flow %q (yet): it delivers to it once it appears", o.Name, o.Flow))
		case local:
			v.Warnings = append(v.Warnings, fmt.Sprintf("output %q: flow %q runs on this node: give it a source of type flow naming this flow instead", o.Name, o.Flow))
		case o.Node != "" && o.Node != ad.Node:
			v.Warnings = append(v.Warnings, fmt.Sprintf("output %q: flow %q is on node %s, not on node %s", o.Name, o.Flow, ad.Node, o.Node))
		}
	}
}

// Uses returns the flow outputs the sources of spec take.
func (s *Spec) Uses() [][2]string {
	var out [][2]string
	for _, src := range s.sources() {
		if src.Type == SrcFlow {
			out = append(out, [2]string{src.Flow, src.Output})
		}
	}
	return out
}

// checkUsersLocked refuses (409, naming the users) an update of old to
// next that removes or renames an output another flow (here or on any
// node the cluster knows) takes, and the deletion of old (next nil) while
// any flow takes one of its outputs.
func (m *Manager) checkUsersLocked(old, next *Spec) error {
	var gone []string
	for _, o := range old.Outputs {
		if next == nil || !slices.ContainsFunc(next.Outputs, func(n Output) bool { return n.Name == o.Name }) {
			gone = append(gone, o.Name)
		}
	}
	users := func(output string) []string {
		var out []string
		m.reg.EachLocked(func(e *entry) {
			if e.ID == old.ID {
				return
			}
			for _, u := range e.Obj.spec.Uses() {
				if u[0] == old.ID && (output == "" || u[1] == output) {
					out = append(out, fmt.Sprintf("%s (this node)", e.ID))
					break
				}
			}
		})
		if m.Cluster != nil {
			out = append(out, m.Cluster.Users(old.ID, output)...)
		}
		return out
	}
	if next == nil {
		if u := users(""); len(u) > 0 {
			return lifecycle.Conflictf("id", "flow %q is the source of flow %s: change or delete that flow first", old.ID, strings.Join(u, ", "))
		}
		if d := m.deliverersLocked(old.ID); len(d) > 0 {
			return lifecycle.Conflictf("id", "flow %q is where %s delivers: change or remove that output first", old.ID, strings.Join(d, ", "))
		}
		return nil
	}
	if in := old.DeliveryInput(); in != nil && !slices.ContainsFunc(next.sources(), func(s *Source) bool { return s.Name == in.Name && s.IsPush() }) {
		if d := m.deliverersLocked(old.ID); len(d) > 0 {
			at := "source"
			if old.Backup == in {
				at = "backup"
			}
			return lifecycle.Conflictf(at, "source %q of flow %q is where %s delivers: change or remove that output first (renaming or removing the push source would leave it nowhere to deliver)", in.Name, old.ID, strings.Join(d, ", "))
		}
	}
	for _, name := range gone {
		if u := users(name); len(u) > 0 {
			return lifecycle.Conflictf("outputs", "output %q of flow %q is the source of flow %s: change that flow first (renaming or removing the output would leave it without media)", name, old.ID, strings.Join(u, ", "))
		}
	}
	return nil
}
