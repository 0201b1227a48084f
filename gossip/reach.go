package gossip

// The data path's word on an edge: gossip needs a few probe rounds to
// suspect a node that died (seen: locate named a killed edge first for
// ~3.5 s), but a connection to its ingest port is refused at once (or
// not answered, when its host is gone). LocateReachable dials the edges
// it is about to name; one that does not accept drops to the end of the
// ranking at once, and stays there until it answers a ping again.

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// MarkUnreachable records that this node's data path could not reach
// node (a connection refused or unanswered). Until node answers a ping
// again its Member says Unreachable, and RankEdges ranks it last.
func (c *Cluster) MarkUnreachable(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unreachable == nil {
		c.unreachable = map[string]time.Time{}
	}
	c.unreachable[node] = time.Now()
}

// unreachableLocked says whether node was marked after its last ack.
func (c *Cluster) unreachableLocked(r *memberRec) bool {
	at, ok := c.unreachable[r.name]
	return ok && at.After(r.lastAck)
}

// reachTimeout bounds a reachability dial to member m from self: 3 RTTs,
// 500 ms to 1 s. The RTT is the larger of m's estimate and the one from
// the two nodes' coordinates: right after a join the network coordinates
// start far too low (a 164 ms edge dialed with a 250 ms bound on a loaded
// host was ranked last although alive). A refused dial ends at once
// whatever the bound; the bound only delays locate while an edge's host
// does not answer at all.
func reachTimeout(self NodeMeta, m Member) time.Duration {
	rtt, _ := linkRTT(self, m)
	return min(max(3*rtt, 500*time.Millisecond), time.Second)
}

// LocateReachable is Locate, after dialing the RTMP port of the first n
// edges (in parallel, each bounded by about 3 RTTs: reachTimeout): an edge that refuses
// or does not answer is marked unreachable and ranked after the others.
// Edges that advertise no RTMP port are not dialed.
func (c *Cluster) LocateReachable(ctx context.Context, client netip.Addr, table LocationTable, n int) ([]Member, error) {
	edges, err := c.Locate(client, table)
	if err != nil {
		return nil, err
	}
	self := c.LocalMeta()
	var wg sync.WaitGroup
	failed := make([]bool, len(edges))
	for i, m := range edges[:min(n, len(edges))] {
		if m.Local || m.Unreachable || m.Meta.Addrs.RTMP == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, reachTimeout(self, m))
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(dctx, "tcp", m.Meta.Addrs.RTMP)
			if err != nil {
				if ctx.Err() == nil {
					failed[i] = true
					c.logger.Info("edge unreachable on its ingest port: ranked last", "node", m.Name, "addr", m.Meta.Addrs.RTMP, "err", err)
				}
				return
			}
			conn.Close()
		}()
	}
	wg.Wait()
	var ok, bad []Member
	for i, m := range edges {
		if failed[i] {
			c.MarkUnreachable(m.Name)
			m.Unreachable = true
			bad = append(bad, m)
			continue
		}
		ok = append(ok, m)
	}
	// the marked ones (ranked last already) stay behind the ones just failed
	return append(ok, bad...), nil
}
