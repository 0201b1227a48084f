package center

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/dualpath"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Dual-path (hitless) streams. An edge sends such a stream over two legs,
// RTP-framed, to two centers; each center forwards the leg it gets from
// the edge to the other (the edge names it), so both centers receive both
// legs, merge them and publish the same merged stream: either can host it,
// and the loss of one center, or of one leg, costs its players nothing.

// dualProtocol is the hub publisher protocol of a merged dual-path stream.
const dualProtocol = "srt-dual"

// legReadTimeout closes a leg that sent nothing for this long.
const legReadTimeout = 1500 * time.Millisecond

// DualStatus is one merged dual-path stream for the API.
type DualStatus struct {
	Stream string         `json:"stream"`
	Window string         `json:"window"`
	Since  time.Time      `json:"since"`
	Legs   [2]DualLegInfo `json:"legs"`
	Merge  dualpath.Stats `json:"merge"`
	// Forward is the leg this center got from the edge, sent on to the
	// other center; nil when it forwards none.
	Forward *DualForward `json:"forward,omitempty"`
}

// DualLegInfo says where a leg comes from.
type DualLegInfo struct {
	Conns int    `json:"connections"`
	From  string `json:"from,omitempty"` // the node that sends it (the edge, or the forwarding center)
	Via   string `json:"via,omitempty"`  // "edge" or "center"
}

// DualForward is the forwarding of one leg to the other center.
type DualForward struct {
	Leg     int         `json:"leg"`
	To      string      `json:"to"`
	Sent    uint64      `json:"sent"`
	Dropped uint64      `json:"dropped"`
	Link    link.Status `json:"link"`
}

type dualStream struct {
	key    string
	since  time.Time
	rx     *dualpath.Receiver
	pub    *media.Publisher
	dm     *mpegts.Demuxer
	emit   func(*unit.Packet) // into pub
	cancel context.CancelFunc
	conns  [dualpath.Legs]int
	from   [dualpath.Legs]string
	direct [dualpath.Legs]bool
	// peer is the center to forward the edge's leg to: the one the edge
	// named, or the last one that forwarded its leg here.
	peer   string
	fwd    atomic.Pointer[link.MessageSender] // set under c.dualMu, read per packet without it
	fwdLeg int
	fwdTo  string
	fwdEnd context.CancelFunc
	// explicit: the route configured the window; else it follows
	// legLatency and the peer (setWindowLocked)
	explicit   bool
	legLatency time.Duration
	// hopLatency is the negotiated latency of the leg forwarded here by
	// the other center (0 until one came: setWindowLocked estimates it)
	hopLatency time.Duration
}

// legParams is what a leg's stream id says.
type legParams struct {
	leg     int
	forward bool   // a center forwards it (else the edge sends it)
	peer    string // edge legs: the other leg's center
	// window is the configured reorder window; else legLatency (the
	// larger SRT latency of the edge's two legs) is the base of it
	window     time.Duration
	legLatency time.Duration
}

func parseLeg(q url.Values) (legParams, bool, error) {
	if !q.Has("leg") {
		return legParams{}, false, nil
	}
	var p legParams
	switch q.Get("leg") {
	case "0":
	case "1":
		p.leg = 1
	default:
		return p, true, fmt.Errorf("leg %q is not 0 or 1", q.Get("leg"))
	}
	p.forward = q.Get("fwd") == "1"
	p.peer = q.Get("peer")
	for _, k := range []string{"win", "lat"} {
		w := q.Get(k)
		if w == "" {
			continue
		}
		d, err := time.ParseDuration(w)
		if err != nil || d <= 0 || d > 10*time.Second {
			return p, true, fmt.Errorf("%s %q is not a duration in 0..10s", k, w)
		}
		if k == "win" {
			p.window = d
		} else {
			p.legLatency = d
		}
	}
	return p, true, nil
}

// divert takes the backbone connections that are dual-path legs (srt
// Config.Divert).
func (c *Center) divert(id srt.StreamID, remote net.Addr) func(*libsrt.Conn) error {
	p, ok, err := parseLeg(id.Query)
	if !ok {
		return nil
	}
	return func(conn *libsrt.Conn) error {
		if err != nil {
			return fmt.Errorf("dual-path leg of %s: %w", id.Key, err)
		}
		from, _ := c.memberAt(remote)
		return c.serveLeg(conn, id.Key, from, p)
	}
}

// serveLeg merges one leg's RTP packets until the connection ends.
func (c *Center) serveLeg(conn *libsrt.Conn, key, from string, p legParams) error {
	// the negotiated TSBPD delay (the larger of both ends' settings, each
	// from its own RTT estimate at connect time): the window is sized by
	// what the legs really wait, not by an estimate taken at another time
	recv, _ := conn.Latency()
	ds, err := c.attachLeg(key, from, p, recv)
	if err != nil {
		return err
	}
	defer c.detachLeg(ds, p)
	var ps dualpath.Parser
	buf := make([]byte, 1500)
	// a leg silent for longer than a few windows is of no use to the
	// merge; its end is noticed here when its sender vanished silently
	rt := min(c.cfg.ReadTimeout, legReadTimeout)
	if rt <= 0 {
		rt = legReadTimeout
	}
	for {
		conn.SetReadDeadline(time.Now().Add(rt))
		n, err := conn.Read(buf)
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				return fmt.Errorf("dual-path leg %d sent nothing for %s", p.leg, rt)
			case errors.Is(err, io.EOF), errors.Is(err, libsrt.ErrClosed):
				return nil
			}
			return fmt.Errorf("dual-path leg %d: read: %w", p.leg, err)
		}
		f, err := ps.Parse(buf[:n])
		if err != nil {
			return fmt.Errorf("dual-path leg %d: %w", p.leg, err)
		}
		if !p.forward {
			c.forward(ds, buf[:n])
		}
		ds.rx.Push(p.leg, f)
	}
}

// attachLeg adds a leg to key's merged stream, starting it (and its
// publisher) with the first leg; recv is the leg connection's negotiated
// receive latency (0 = unknown).
func (c *Center) attachLeg(key, from string, p legParams, recv time.Duration) (*dualStream, error) {
	c.dualMu.Lock()
	defer c.dualMu.Unlock()
	ds := c.dual[key]
	if ds == nil {
		c.endPull(key) // the stream arrives here now
		pub, err := c.hub.Publish(key, media.PublisherInfo{Protocol: dualProtocol, Remote: from, Native: media.FormatTS, Takeover: true})
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", key, err)
		}
		ds = &dualStream{key: key, since: time.Now(), pub: pub, dm: mpegts.NewDemuxer()}
		ds.rx = dualpath.NewReceiver(p.window, ds.write(c))
		ctx, cancel := context.WithCancel(c.ctx)
		ds.cancel = cancel
		if c.dual == nil {
			c.dual = map[string]*dualStream{}
		}
		c.dual[key] = ds
		c.wg.Add(2)
		go func() { defer c.wg.Done(); ds.rx.Run(ctx) }()
		go func() { defer c.wg.Done(); c.keepClaim(ctx, key) }()
		c.log.Info("dual-path stream: merging legs", "stream", key, "window", ds.rx.Window().String())
		// a third center that pulls the stream from the other host
		// keeps a standby pull from this one (standby.go)
		if err := c.cl.Publish(dualHostKey(key, c.cl.Name())); err != nil {
			c.log.Warn("directory publish failed", "stream", key, "err", err)
		}
	}
	if p.window > 0 {
		ds.explicit = true
		ds.rx.SetWindow(p.window)
	}
	ds.legLatency = max(ds.legLatency, p.legLatency)
	if p.forward {
		ds.hopLatency = recv
	} else {
		ds.legLatency = max(ds.legLatency, recv)
	}
	first := ds.conns[p.leg] == 0
	ds.conns[p.leg]++
	ds.from[p.leg], ds.direct[p.leg] = from, !p.forward
	switch {
	case p.forward && from != "":
		ds.peer = from // forward the edge's leg back to the center that forwards to us
	case !p.forward && p.peer != "" && ds.peer == "":
		ds.peer = p.peer
	}
	c.setWindowLocked(ds) // before a forward starts: its queue's bound follows the window
	if !p.forward && ds.fwd.Load() == nil && ds.peer != "" {
		c.startForwardLocked(ds, p.leg)
	}
	if forwarding := ds.fwd.Load() != nil; p.forward && !forwarding && ds.direct[1-p.leg] && ds.conns[1-p.leg] > 0 {
		// the other center learnt of us from its edge: forward to it too
		c.startForwardLocked(ds, 1-p.leg)
	}
	if first {
		ds.rx.SetUp(p.leg, true)
	}
	via := "edge"
	if p.forward {
		via = "center"
	}
	c.log.Info("dual-path leg up", "stream", key, "leg", p.leg, "from", from, "via", via)
	return ds, nil
}

// setWindowLocked sets the default reorder window: the leg that comes
// through the other center runs behind the direct one by about that
// center's link latency on top of the edge's, so the window is the
// larger edge leg latency plus the latency of the hop from the other
// center. Both are the connections' negotiated latencies once known (the
// other center sends its edge leg's as "lat"); estimates from RTTs
// measured at another time fell short of them on a loaded host (a packet
// the direct leg lost came through tyo after the 638 ms window at sin,
// TestClusterDualPath). c.dualMu is held.
func (c *Center) setWindowLocked(ds *dualStream) {
	if ds.explicit || ds.legLatency == 0 {
		return
	}
	w := ds.legLatency
	switch {
	case ds.hopLatency > 0:
		w += ds.hopLatency
	case ds.peer != "":
		rtt, _ := c.cl.RTT(ds.peer)
		w += c.cfg.Latency(rtt)
	default:
		w *= 2
	}
	ds.rx.SetWindow((w + dualLagAllowance).Round(time.Millisecond))
}

// dualLagAllowance is added to the default window for what the latencies
// do not cover: the forwarded copy passes through one more process (the
// other center) than the direct one, and the edge sends each leg from
// its own goroutine; on a loaded host each can lag by about 100 ms (pings
// of 94-118 ms on a 6 ms path, load 20-60 on 2 cores). A longer window
// costs nothing while the legs deliver: only a packet both legs lost
// waits for it.
const dualLagAllowance = 250 * time.Millisecond

// detachLeg removes a leg; the last one ends the stream here.
func (c *Center) detachLeg(ds *dualStream, p legParams) {
	c.dualMu.Lock()
	ds.conns[p.leg]--
	if ds.conns[p.leg] == 0 {
		ds.rx.SetUp(p.leg, false)
	}
	c.log.Info("dual-path leg down", "stream", ds.key, "leg", p.leg)
	if !p.forward && ds.fwd.Load() != nil && ds.fwdLeg == p.leg && ds.conns[p.leg] == 0 {
		ds.fwdEnd()
		ds.fwd.Store(nil)
	}
	last := ds.conns[0]+ds.conns[1] == 0
	removed := last && c.dual[ds.key] == ds
	if removed {
		delete(c.dual, ds.key)
	}
	c.dualMu.Unlock()
	if removed {
		if err := c.cl.Unpublish(dualHostKey(ds.key, c.cl.Name())); err != nil {
			c.log.Warn("directory unpublish failed", "stream", ds.key, "err", err)
		}
	}
	if last {
		ds.cancel()
		ds.rx.Drain(ds.flush)
		ds.pub.Close()
		c.log.Info("dual-path stream: no leg left", "stream", ds.key)
	}
}

// write is the receiver's output: merged TS into the hub.
func (ds *dualStream) write(c *Center) func(dualpath.Frame) {
	var werr error
	ds.emit = func(pk *unit.Packet) {
		if werr == nil {
			werr = ds.pub.Write(pk)
		}
	}
	return func(f dualpath.Frame) {
		if err := ds.dm.Feed(f.Payload, ds.emit); err != nil {
			c.log.Warn("dual-path stream: bad MPEG-TS after the merge; resynchronising", "stream", ds.key, "err", err)
			ds.dm = mpegts.NewDemuxer()
		}
		if werr != nil {
			c.log.Warn("dual-path stream: hub write", "stream", ds.key, "err", werr)
			werr = nil
		}
	}
}

// flush hands the hub what the demuxer holds (the stream ends); it runs
// under the receiver's lock (Drain).
func (ds *dualStream) flush() { _ = ds.dm.Flush(ds.emit) }

// forward sends a raw packet of the edge's leg on to the other center.
func (c *Center) forward(ds *dualStream, b []byte) {
	if s := ds.fwd.Load(); s != nil {
		s.Send(link.NewMessage(b, 1))
	}
}

// startForwardLocked forwards leg to ds.peer (or whoever is the peer at
// each reconnect). c.dualMu is held.
func (c *Center) startForwardLocked(ds *dualStream, leg int) {
	ctx, cancel := context.WithCancel(c.ctx)
	q := url.Values{}
	q.Set("leg", strconv.Itoa(leg))
	q.Set("fwd", "1")
	if ds.explicit {
		q.Set("win", ds.rx.Window().String())
	} else if ds.legLatency > 0 {
		q.Set("lat", ds.legLatency.String())
	}
	s := link.NewMessageSender(forwardConfig(ds.key, ds.rx.Window(), func(attempt int, lastErr error) (link.Target, error) {
		c.dualMu.Lock()
		to := ds.peer
		prev := ds.fwdTo
		ds.fwdTo = to
		c.dualMu.Unlock()
		c.noteFailure(prev, lastErr)
		t, _, err := c.backboneTarget(to, "publish:"+ds.key+"?"+q.Encode())
		if err != nil {
			return t, fmt.Errorf("dual-path forward of %s: %w", ds.key, err)
		}
		if attempt == 0 || lastErr != nil {
			c.log.Info("dual-path leg forwarded to the other center", "stream", ds.key, "leg", leg, "to", to)
		}
		return t, nil
	}), c.log.With("stream", ds.key, "forward_leg", leg))
	ds.fwd.Store(s)
	ds.fwdLeg, ds.fwdEnd = leg, cancel
	c.wg.Add(1)
	go func() { defer c.wg.Done(); s.Run(ctx) }()
}

// forwardConfig is the sender config of a forward of key's leg to the
// other center, whose merge window is about window. Its queue is bounded
// in age as an edge's legs are (dualpath.QueueMaxAge): a forward that
// was down or slow to connect resumes near the live edge, so a merge the
// other center starts with it (it came back, or its edge leg is late)
// does not begin with seconds of stale media.
func forwardConfig(key string, window time.Duration, next func(attempt int, lastErr error) (link.Target, error)) link.MessageSenderConfig {
	return link.MessageSenderConfig{Key: key, Next: next, MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		MaxAge: dualpath.QueueMaxAge(window)}
}

// keepClaim names this center in the directory when the directory names
// no live host for key: both centers of a dual-path stream host it, so
// when the one named dies the other takes over at once. A tombstone (the
// other center's copy ended, as both do at the end of the stream) is
// claimed over only when this copy still runs a second later.
func (c *Center) keepClaim(ctx context.Context, key string) {
	const tick = 250 * time.Millisecond
	tk := time.NewTicker(tick)
	defer tk.Stop()
	ended := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if e, ok := c.cl.Lookup(key); ok {
			ended = 0
			if e.Node == c.cl.Name() || !c.peerLost(key, e.Node) {
				continue
			}
			// the named host is the other center, and both links to it
			// are down: it is dead or cut off, and gossip may take
			// seconds to say so
			c.log.Info("dual-path stream: lost both links to the host the directory names; claiming it", "stream", key, "host", e.Node)
			if err := c.cl.Publish(key); err != nil {
				c.log.Warn("directory publish failed", "stream", key, "err", err)
			}
			continue
		}
		if c.tombstoned(key) {
			if ended++; ended*int(tick) < int(time.Second) {
				continue
			}
		}
		c.log.Info("dual-path stream: the directory names no live host; claiming it", "stream", key)
		if err := c.cl.Publish(key); err != nil {
			c.log.Warn("directory publish failed", "stream", key, "err", err)
		}
		ended = 0
	}
}

// peerLost reports whether node is key's other center and looks lost:
// a link there found it dead since its last ping answer (the forward's
// link watch, noteFailure), or no leg comes from it and the forward there
// does not run or gossip suspects node (a center that only lost its edge
// leg is neither silent to gossip nor to the forward).
func (c *Center) peerLost(key, node string) bool {
	c.dualMu.Lock()
	ds := c.dual[key]
	if ds == nil || ds.peer != node {
		c.dualMu.Unlock()
		return false
	}
	if m, ok := c.cl.Member(node); ok && m.Unreachable {
		// the forward there found it dead (noteFailure): its leg here
		// would take legReadTimeout to end
		c.dualMu.Unlock()
		return true
	}
	for i := range ds.conns {
		if ds.conns[i] > 0 && ds.from[i] == node {
			c.dualMu.Unlock()
			return false
		}
	}
	fwd := ds.fwd.Load()
	c.dualMu.Unlock()
	if m, ok := c.cl.Member(node); !ok || m.State != gossip.StateAlive {
		return true
	}
	if fwd == nil {
		return false
	}
	// a forward that never ran yet is starting, not lost
	st := fwd.Status()
	return st.Sessions > 0 && st.State != link.StateRunning
}

// tombstoned reports whether the directory's entry for key says a live
// node unpublished it.
func (c *Center) tombstoned(key string) bool {
	for _, e := range c.cl.Directory() {
		if e.Stream == key {
			m, ok := c.cl.Member(e.Node)
			return e.Deleted && ok && m.State != gossip.StateDead && m.State != gossip.StateLeft
		}
	}
	return false
}

// Duals returns the merged dual-path streams, sorted by stream.
func (c *Center) Duals() []DualStatus {
	c.dualMu.Lock()
	out := make([]DualStatus, 0, len(c.dual))
	var fwds []*link.MessageSender
	for _, ds := range c.dual {
		s := DualStatus{Stream: ds.key, Window: ds.rx.Window().String(), Since: ds.since}
		for i := range s.Legs {
			s.Legs[i] = DualLegInfo{Conns: ds.conns[i], From: ds.from[i]}
			if ds.conns[i] > 0 {
				s.Legs[i].Via = "center"
				if ds.direct[i] {
					s.Legs[i].Via = "edge"
				}
			}
		}
		fwd := ds.fwd.Load()
		if fwd != nil {
			s.Forward = &DualForward{Leg: ds.fwdLeg, To: ds.fwdTo}
		}
		out = append(out, s)
		fwds = append(fwds, fwd)
	}
	rxs := make([]*dualpath.Receiver, 0, len(out))
	for _, s := range out {
		rxs = append(rxs, c.dual[s.Stream].rx)
	}
	c.dualMu.Unlock()
	for i := range out {
		out[i].Merge = rxs[i].Stats()
		if f := fwds[i]; f != nil {
			out[i].Forward.Sent, out[i].Forward.Dropped, out[i].Forward.Link = f.Sent(), f.Dropped(), f.Status()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}
