package gossip

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// FlowEntry advertises one flow of a node: its state, its outputs and the
// flows whose outputs its sources take, so another node can resolve a
// flow source by the flow's id and refuse to break an output that is in
// use. Entries merge like DirEntry: the newer Version wins, a deleted flow
// leaves a tombstone for Timings.TombstoneTTL.
type FlowEntry struct {
	ID      string
	Node    string
	Version uint64
	Deleted bool
	Updated time.Time // when this node learned of it (local clock)
	State   string    // the flow's state (lifecycle.State)
	Outputs []FlowOutput
	Uses    []FlowRef // the flows and outputs its sources take
	// Inputs are its push sources (rtmp-push, srt-listener), primary
	// first: the streams another node's flow output delivers to.
	Inputs []FlowInput
	// Delivers are its flow outputs that deliver into another flow (by
	// id, optionally on a node), so that flow's node can refuse to delete
	// it or remove the push source they deliver into.
	Delivers []FlowDelivery
}

// FlowDelivery is a flow output of an advertised flow that delivers into
// flow Flow (on node Node, when set).
type FlowDelivery struct{ Output, Flow, Node string }

// FlowInput is a push source of an advertised flow and the hub stream
// its publishers feed.
type FlowInput struct{ Name, Stream string }

// FlowOutput is one output of an advertised flow.
type FlowOutput struct{ Name, Type string }

// FlowRef names an output of a flow (a flow source's reference).
type FlowRef struct{ Flow, Output string }

// Caps on an advertised flow (a flow with more is advertised cut to
// them: its other outputs resolve as missing elsewhere).
const (
	maxFlowOutputs = 64
	maxFlowUses    = 4
	maxFlowInputs  = 2
	// MaxFlowDelivers is the most delivering outputs advertised per flow.
	MaxFlowDelivers = 16
	maxFlowStream   = 256
	maxFlowField    = 64
)

// ErrBadFlow refuses a flow entry that cannot be advertised.
var ErrBadFlow = errors.New("invalid flow entry")

func (e FlowEntry) key() string                       { return e.ID }
func (e FlowEntry) owner() string                     { return e.Node }
func (e FlowEntry) tombstone() bool                   { return e.Deleted }
func (e FlowEntry) stamp() uint64                     { return e.Version }
func (e FlowEntry) updatedAt() time.Time              { return e.Updated }
func (e FlowEntry) withUpdated(t time.Time) FlowEntry { e.Updated = t; return e }

func (e FlowEntry) newerThan(o FlowEntry) bool {
	if e.Version != o.Version {
		return e.Version > o.Version
	}
	if e.Node != o.Node {
		return e.Node > o.Node
	}
	return e.Deleted && !o.Deleted
}

// flowDir is the replicated map of flow ids to their entries (lww.go).
type flowDir struct{ lww[FlowEntry] }

func newFlowDir() *flowDir { return &flowDir{newLWW[FlowEntry]()} }

// claim records e as this node's (node) and returns it versioned, or ok
// false when the entry is the same as the one recorded (nothing to gossip).
func (d *flowDir) claim(e FlowEntry, node string) (FlowEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e.Node = node
	if cur, ok := d.entries[e.ID]; ok && cur.Node == node && !cur.Deleted && sameFlow(cur, e) {
		return cur, false
	}
	e.Version, e.Updated = d.tickLocked(), d.now()
	d.entries[e.ID] = e
	d.changedLocked()
	return e, true
}

func sameFlow(a, b FlowEntry) bool {
	return a.State == b.State && slices.Equal(a.Outputs, b.Outputs) && slices.Equal(a.Uses, b.Uses) &&
		slices.Equal(a.Inputs, b.Inputs) && slices.Equal(a.Delivers, b.Delivers)
}

// release tombstones flow id if node owns it.
func (d *flowDir) release(id, node string) (FlowEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.entries[id]
	if !ok || cur.Deleted || cur.Node != node {
		return FlowEntry{}, false
	}
	e := FlowEntry{ID: id, Node: node, Version: d.tickLocked(), Deleted: true, Updated: d.now()}
	d.entries[id] = e
	d.changedLocked()
	return e, true
}

// checkFlow refuses an entry that would not decode at the peers.
func checkFlow(e FlowEntry) error {
	if e.ID == "" || len(e.ID) > maxFlowField || len(e.State) > maxFlowField {
		return fmt.Errorf("%w: id %q / state %q: 1 to %d bytes", ErrBadFlow, e.ID, e.State, maxFlowField)
	}
	if len(e.Outputs) > maxFlowOutputs || len(e.Uses) > maxFlowUses || len(e.Inputs) > maxFlowInputs || len(e.Delivers) > MaxFlowDelivers {
		return fmt.Errorf("%w: %d outputs, %d uses, %d inputs, %d delivers: at most %d, %d, %d and %d", ErrBadFlow,
			len(e.Outputs), len(e.Uses), len(e.Inputs), len(e.Delivers), maxFlowOutputs, maxFlowUses, maxFlowInputs, MaxFlowDelivers)
	}
	for _, d := range e.Delivers {
		if d.Output == "" || len(d.Output) > maxFlowField || d.Flow == "" || len(d.Flow) > maxFlowField || len(d.Node) > maxNodeName {
			return fmt.Errorf("%w: delivering output %q", ErrBadFlow, d.Output)
		}
	}
	for _, in := range e.Inputs {
		if in.Name == "" || len(in.Name) > maxFlowField || in.Stream == "" || len(in.Stream) > maxFlowStream {
			return fmt.Errorf("%w: input %q", ErrBadFlow, in.Name)
		}
	}
	for _, o := range e.Outputs {
		if o.Name == "" || len(o.Name) > maxFlowField || len(o.Type) > maxFlowField {
			return fmt.Errorf("%w: output %q", ErrBadFlow, o.Name)
		}
	}
	for _, u := range e.Uses {
		if u.Flow == "" || len(u.Flow) > maxFlowField || len(u.Output) > maxFlowField {
			return fmt.Errorf("%w: use %q/%q", ErrBadFlow, u.Flow, u.Output)
		}
	}
	return nil
}

// PublishFlow advertises this node's flow e (Node is set to this node).
// An entry equal to the advertised one is not gossiped again.
func (c *Cluster) PublishFlow(e FlowEntry) error {
	if err := checkFlow(e); err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if v, ok := c.flows.claim(e, c.cfg.NodeName); ok {
		c.broadcastFlow(v)
	}
	return nil
}

// UnpublishFlow withdraws this node's flow id (a tombstone is gossiped).
func (c *Cluster) UnpublishFlow(id string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if e, ok := c.flows.release(id, c.cfg.NodeName); ok {
		c.broadcastFlow(e)
	}
	return nil
}

// LookupFlow returns the advertised flow id, if a live member has it.
func (c *Cluster) LookupFlow(id string) (FlowEntry, bool) {
	e, ok := c.flows.lookup(id)
	if !ok || e.Deleted || c.gone(e.Node) {
		return FlowEntry{}, false
	}
	return e, true
}

// Flows returns the advertised flows of live members, sorted by id.
func (c *Cluster) Flows() []FlowEntry {
	all := c.flows.snapshot()
	out := all[:0]
	for _, e := range all {
		if !e.Deleted && !c.gone(e.Node) {
			out = append(out, e)
		}
	}
	return out
}

// FlowsChanged returns a channel closed at the next change of any flow
// entry.
func (c *Cluster) FlowsChanged() <-chan struct{} { return c.flows.watch() }

func (c *Cluster) broadcastFlow(e FlowEntry) {
	c.queue.QueueBroadcast(&flowBroadcast{id: e.ID, msg: encodeFlowEntry(e)})
}

// flowBroadcast is one flow entry queued for gossip; a newer one for the
// same flow replaces it.
type flowBroadcast struct {
	id  string
	msg []byte
}

func (b *flowBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*flowBroadcast)
	return ok && o.id == b.id
}
func (b *flowBroadcast) Name() string    { return "flow:" + b.id }
func (b *flowBroadcast) Message() []byte { return b.msg }
func (b *flowBroadcast) Finished()       {}

// Wire form of flow entries: kindFlow carries one; kindStateFlows is the
// whole state (directory entries, then flow entries) for push/pull.
const (
	kindFlow       byte = 0x14
	kindStateFlows byte = 0x15
	flagFlowDel    byte = 1
	// flagFlowDelivers: the delivering outputs follow the inputs (an
	// entry without them decodes as before)
	flagFlowDelivers byte = 2
)

func appendFlow(b []byte, e FlowEntry) []byte {
	b = appendUvarint(b, e.Version)
	var flags byte
	if e.Deleted {
		flags |= flagFlowDel
	}
	if len(e.Delivers) > 0 {
		flags |= flagFlowDelivers
	}
	b = append(b, flags)
	b = appendString(b, e.ID)
	b = appendString(b, e.Node)
	b = appendString(b, e.State)
	b = appendUvarint(b, uint64(len(e.Outputs)))
	for _, o := range e.Outputs {
		b = appendString(appendString(b, o.Name), o.Type)
	}
	b = appendUvarint(b, uint64(len(e.Uses)))
	for _, u := range e.Uses {
		b = appendString(appendString(b, u.Flow), u.Output)
	}
	b = appendUvarint(b, uint64(len(e.Inputs)))
	for _, in := range e.Inputs {
		b = appendString(appendString(b, in.Name), in.Stream)
	}
	if len(e.Delivers) > 0 {
		b = appendUvarint(b, uint64(len(e.Delivers)))
		for _, d := range e.Delivers {
			b = appendString(appendString(appendString(b, d.Output), d.Flow), d.Node)
		}
	}
	return b
}

func encodeFlowEntry(e FlowEntry) []byte { return appendFlow([]byte{kindFlow}, e) }

// encodeStateFlows is the push/pull state: the directory, then the flows.
func encodeStateFlows(entries []DirEntry, flows []FlowEntry) []byte {
	b := []byte{kindStateFlows}
	b = appendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = appendEntry(b, e)
	}
	b = appendUvarint(b, uint64(len(flows)))
	for _, f := range flows {
		b = appendFlow(b, f)
	}
	return b
}

func (r *reader) flow() (FlowEntry, error) {
	var e FlowEntry
	v, flags, err := r.head(flagFlowDel | flagFlowDelivers)
	if err != nil {
		return e, err
	}
	e.Version, e.Deleted = v, flags&flagFlowDel != 0
	if e.ID, err = r.string(maxFlowField); err != nil {
		return e, fmt.Errorf("id: %w", err)
	}
	if e.Node, err = r.string(maxNodeName); err != nil {
		return e, fmt.Errorf("node: %w", err)
	}
	if e.State, err = r.string(maxFlowField); err != nil {
		return e, fmt.Errorf("state: %w", err)
	}
	if e.ID == "" || e.Node == "" {
		return e, errors.New("empty flow id or node name")
	}
	// outputs (name, type), uses (flow, output), inputs (name, stream)
	err = r.pairs("outputs", maxFlowOutputs, maxFlowField, func(a, b string) { e.Outputs = append(e.Outputs, FlowOutput{a, b}) })
	if err == nil {
		err = r.pairs("uses", maxFlowUses, maxFlowField, func(a, b string) { e.Uses = append(e.Uses, FlowRef{a, b}) })
	}
	if err == nil {
		err = r.pairs("inputs", maxFlowInputs, maxFlowStream, func(a, b string) { e.Inputs = append(e.Inputs, FlowInput{a, b}) })
	}
	if err == nil && flags&flagFlowDelivers != 0 {
		err = r.delivers(&e)
	}
	if err != nil {
		return e, err
	}
	return e, nil
}

// delivers reads the delivering outputs (output, flow, node) of e.
func (r *reader) delivers(e *FlowEntry) error {
	n, err := r.count(MaxFlowDelivers)
	if err != nil {
		return fmt.Errorf("delivers: %w", err)
	}
	for range n {
		var d FlowDelivery
		if d.Output, err = r.string(maxFlowField); err == nil {
			if d.Flow, err = r.string(maxFlowField); err == nil {
				d.Node, err = r.string(maxNodeName)
			}
		}
		if err == nil && (d.Output == "" || d.Flow == "") {
			err = errors.New("empty output or flow")
		}
		if err != nil {
			return fmt.Errorf("delivers: %w", err)
		}
		e.Delivers = append(e.Delivers, d)
	}
	return nil
}

// pairs reads a count of at most max string pairs (the first of at most
// maxFlowField bytes, the second of at most second) and hands each to add.
func (r *reader) pairs(what string, max uint64, second int, add func(a, b string)) error {
	n, err := r.count(max)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for range n {
		a, err := r.string(maxFlowField)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		b, err := r.string(second)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		add(a, b)
	}
	return nil
}

// count reads a count of at most max items that each take a byte or more.
func (r *reader) count(max uint64) (uint64, error) {
	n, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	if n > max || n > uint64(len(r.b)) {
		return 0, fmt.Errorf("count %d exceeds %d or the %d bytes left", n, max, len(r.b))
	}
	return n, nil
}

// decodeFlows reads the body of a kindFlow (one) or kindStateFlows message
// into m; it is called by decodeMessage after the kind byte.
func (r *reader) decodeFlows(m *message) error {
	if m.kind == kindFlow {
		e, err := r.flow()
		if err != nil {
			return fmt.Errorf("flow entry: %w", err)
		}
		m.flows = []FlowEntry{e}
		return nil
	}
	var err error
	if m.entries, err = r.entries(); err != nil {
		return err
	}
	m.flows, err = readList(r, "state flows", "flow", 7, r.flow)
	return err
}
