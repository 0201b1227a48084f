package gossip

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist's Delegate, EventDelegate and PingDelegate
// for a Cluster. memberlist calls the event methods with its node lock held,
// so nothing here calls back into memberlist.
type delegate struct {
	c *Cluster
}

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.PingDelegate  = (*delegate)(nil)
)

// NodeMeta returns the encoded metadata (validated to fit MetaMaxSize).
func (d *delegate) NodeMeta(limit int) []byte {
	c := d.c
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	if len(c.metaBytes) > limit {
		c.logger.Error("node metadata exceeds the gossip limit; advertising none", "bytes", len(c.metaBytes), "limit", limit)
		return nil
	}
	return append([]byte(nil), c.metaBytes...)
}

// NotifyMsg handles a directory broadcast from a peer. Entries that change
// our directory are re-broadcast so they spread epidemically.
func (d *delegate) NotifyMsg(b []byte) {
	d.c.merge(b, true)
}

// GetBroadcasts hands memberlist our queued directory entries.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.queue.GetBroadcasts(overhead, limit)
}

// LocalState is our whole directory for push/pull anti-entropy.
func (d *delegate) LocalState(join bool) []byte {
	return encodeStateFlows(d.c.dir.snapshot(), d.c.flows.snapshot())
}

// MergeRemoteState merges a peer's whole directory.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	d.c.merge(buf, false)
	d.c.markSynced()
}

func (c *Cluster) merge(b []byte, rebroadcast bool) {
	msg, err := decodeMessage(b)
	if err != nil {
		c.logger.Warn("dropped malformed gossip message", "err", err, "bytes", len(b))
		return
	}
	if msg.leaving != "" {
		if c.markLeaving(msg.leaving) && rebroadcast {
			c.queue.QueueBroadcast(&leaveBroadcast{node: msg.leaving, msg: encodeLeave(msg.leaving)})
		}
		return
	}
	for _, e := range msg.entries {
		if c.dir.apply(e, c.gone(e.Node)) && rebroadcast {
			c.broadcast(e)
		}
	}
	for _, f := range msg.flows {
		if c.flows.apply(f, c.gone(f.Node)) && rebroadcast {
			c.broadcastFlow(f)
		}
	}
}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	c := d.c
	now := time.Now()
	meta, metaErr := decodeMeta(n.Name, n.Meta)
	c.mu.Lock()
	r, ok := c.members[n.Name]
	if !ok {
		r = &memberRec{name: n.Name}
		c.members[n.Name] = r
	}
	r.addr = addrPort(n)
	r.meta, r.metaErr = meta, metaErr
	r.state = StateAlive
	r.leaving = false
	r.since, r.updated = now, now
	alive := c.numAliveLocked()
	m := c.memberLocked(r, alive)
	c.mu.Unlock()
	if metaErr != nil {
		c.logger.Warn("member advertises unreadable metadata", "node", n.Name, "err", metaErr)
	}
	if m.Local {
		return
	}
	c.logger.Info("member joined", "node", n.Name, "addr", m.Addr.String(), "role", meta.Role, "site", meta.Site)
	c.emit(Event{Type: EventJoin, Member: m, At: now})
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	c := d.c
	now := time.Now()
	meta, metaErr := decodeMeta(n.Name, n.Meta)
	c.mu.Lock()
	r, ok := c.members[n.Name]
	if !ok {
		r = &memberRec{name: n.Name, state: StateAlive, since: now}
		c.members[n.Name] = r
	}
	r.addr = addrPort(n)
	r.meta, r.metaErr = meta, metaErr
	r.updated = now
	m := c.memberLocked(r, c.numAliveLocked())
	c.mu.Unlock()
	if m.Local {
		return
	}
	c.emit(Event{Type: EventUpdate, Member: m, At: now})
}

func (d *delegate) NotifyLeave(n *memberlist.Node) {
	c := d.c
	now := time.Now()
	// memberlist does not say whether the node left or failed (Node.State
	// is not maintained), so, like serf, we rely on the leave intent the
	// node sent before leaving.
	c.mu.Lock()
	r, ok := c.members[n.Name]
	if !ok {
		r = &memberRec{name: n.Name, addr: addrPort(n)}
		r.meta, r.metaErr = decodeMeta(n.Name, n.Meta)
		c.members[n.Name] = r
	}
	state, typ := StateDead, EventFailed
	if r.leaving {
		state, typ = StateLeft, EventLeave
	}
	r.state = state
	r.leaving = false
	r.updated = now
	r.coord = nil
	m := c.memberLocked(r, c.numAliveLocked())
	c.mu.Unlock()
	c.coord.ForgetNode(n.Name)
	streams := c.dir.dropOwner(n.Name)
	c.flows.dropOwner(n.Name)
	if m.Local {
		return
	}
	c.logger.Info("member "+state.String(), "node", n.Name, "dropped_streams", len(streams))
	c.emit(Event{Type: typ, Member: m, Streams: streams, At: now})
}

// AckPayload sends our network coordinate with every ping ack, as serf does.
func (d *delegate) AckPayload() []byte {
	return encodeCoordinate(d.c.coord.GetCoordinate())
}

// NotifyPingComplete records the measured RTT and feeds the peer's
// coordinate and the RTT into our Vivaldi client, as serf does.
func (d *delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, payload []byte) {
	c := d.c
	now := time.Now()
	coord, err := decodeCoordinate(payload)
	if err != nil {
		c.logger.Debug("ignored ping payload", "node", other.Name, "err", err)
	} else if _, err := c.coord.Update(other.Name, coord, rtt); err != nil {
		c.logger.Debug("rejected coordinate", "node", other.Name, "err", err)
		coord = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.members[other.Name]
	if !ok {
		return
	}
	r.addPing(rtt, now)
	if coord != nil {
		r.coord = coord
	}
}

// markLeaving records a leave intent; it reports whether it was news.
func (c *Cluster) markLeaving(node string) bool {
	if node == c.cfg.NodeName {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.members[node]
	if !ok || r.state != StateAlive || r.leaving {
		return false
	}
	r.leaving = true
	return true
}

// leaveBroadcast is a queued leave intent.
type leaveBroadcast struct {
	node string
	msg  []byte
}

func (b *leaveBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*leaveBroadcast)
	return ok && o.node == b.node
}
func (b *leaveBroadcast) Name() string    { return "leave:" + b.node }
func (b *leaveBroadcast) Message() []byte { return b.msg }
func (b *leaveBroadcast) Finished()       {}
