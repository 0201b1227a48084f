// Package center is the center role's cluster part: the SRT backbone
// listener that takes edges' uplinks (and other centers' pulls), the stream
// directory entries for the streams this node hosts, and on-demand pulls of
// streams hosted by another center when a player asks for them here.
package center

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// pullProtocol is the hub publisher protocol of an on-demand SRT pull.
const pullProtocol = "srt-pull"

// ErrNotMember refuses a backbone connection from outside the cluster.
var ErrNotMember = errors.New("not a cluster member")

// Cluster is what the center needs from gossip (a *gossip.Cluster).
type Cluster interface {
	Name() string
	Members() []gossip.Member
	Member(name string) (gossip.Member, bool)
	Lookup(stream string) (gossip.DirEntry, bool)
	WaitLookup(ctx context.Context, stream string) (gossip.DirEntry, bool)
	Directory() []gossip.DirEntry
	// DirectoryChanged returns a channel closed at the next change of
	// the directory.
	DirectoryChanged() <-chan struct{}
	Publish(stream string) error
	Unpublish(stream string) error
	RTT(node string) (time.Duration, bool)
	// MarkUnreachable records that this node's data path found node
	// dead; its Member says Unreachable until it answers a ping again.
	MarkUnreachable(node string)
}

// Config configures the center.
type Config struct {
	// Listen is the backbone SRT listener (UDP host:port); "" = none (the
	// node still pulls, e.g. a standalone node without edges).
	Listen     string
	Passphrase string // backbone AES passphrase; "" = unencrypted
	PBKeyLen   int    // for pulls: 16, 24 or 32 (0 = 32)
	// IdleTimeout is the silence after which a backbone link is dead
	// (default 1s).
	IdleTimeout time.Duration
	// Latency returns the SRT latency of a pull link for an RTT; nil = 4x
	// RTT, at least 120ms.
	Latency func(rtt time.Duration) time.Duration
	// DSCP marks the center's backbone packets: its pull links and what
	// its backbone listener sends (pulls served to other centers, acks to
	// edges); 0 = unmarked.
	DSCP int
	// PullIdleStop stops an on-demand pull nobody reads (default 10s).
	PullIdleStop time.Duration
	// ReadTimeout closes an uplink that sends no media (default 10s).
	ReadTimeout time.Duration
	// PlayWait is how long a player waits for a stream that is not live
	// here: Missing waits as long for the directory to name a host (a
	// center that just started has not synced its directory yet).
	PlayWait time.Duration
	// Budget is the node's SRT receive memory the backbone listener's
	// connections are counted in (shared with the SRT listener; a
	// member's link is never refused for it); nil = none.
	Budget *srt.Budget
	// Events is the node's event bus the center follows (streams that
	// go live here or end; the subscription is taken by New, run by
	// Run); nil = none.
	Events *events.Bus
}

// PullStatus is one on-demand pull for the API.
type PullStatus struct {
	Stream string      `json:"stream"`
	From   string      `json:"from"`
	Link   link.Status `json:"link"`
	// Standby is the standby pull of a dual-path stream from its other
	// host (standby.go); nil when there is none.
	Standby *StandbyStatus `json:"standby,omitempty"`
}

// Center is the center role's cluster part.
type Center struct {
	cfg Config
	hub *media.Hub
	cl  Cluster
	log *slog.Logger
	srt *srt.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	sub   *events.Subscription // of cfg.Events; nil without a bus
	mu    sync.Mutex
	pulls map[string]*pull
	// dual.go: merged dual-path streams
	dualMu sync.Mutex
	dual   map[string]*dualStream
}

type pull struct {
	from   string
	p      *link.Puller
	cancel context.CancelFunc
	next   *pull         // a replacement pull that has not delivered yet
	done   chan struct{} // closed when it ended (its publisher let go)
	// standby is the pull of a dual-path stream from its other host,
	// held until this one ends or stalls (standby.go); sp is a standby's
	// splice
	standby *pull
	sp      *link.Splice
}

// stop ends the pull, its pending replacement and its standby.
func (pl *pull) stop() {
	if pl.next != nil {
		pl.next.cancel()
	}
	pl.stopStandby()
	pl.cancel()
}

// stopStandby ends the pull's standby, if any.
func (pl *pull) stopStandby() {
	if pl.standby != nil {
		pl.standby.cancel()
		pl.standby = nil
	}
}

// New validates cfg and binds the backbone listener.
func New(cfg Config, hub *media.Hub, cl Cluster, log *slog.Logger) (*Center, error) {
	if hub == nil || cl == nil {
		return nil, errors.New("center: hub and cluster are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.PBKeyLen == 0 {
		cfg.PBKeyLen = 32
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Second
	}
	if cfg.Latency == nil {
		cfg.Latency = func(rtt time.Duration) time.Duration { return max(4*rtt, 120*time.Millisecond) }
	}
	if cfg.PullIdleStop == 0 {
		cfg.PullIdleStop = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Center{cfg: cfg, hub: hub, cl: cl, log: log.With("component", "center"), ctx: ctx, cancel: cancel, pulls: map[string]*pull{}}
	if cfg.Listen != "" {
		s, err := srt.New(srt.Config{
			Listen:            cfg.Listen,
			PublishPassphrase: cfg.Passphrase,
			ReadPassphrase:    cfg.Passphrase,
			PeerIdleTimeout:   cfg.IdleTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			Authorize:         c.authorize,
			BeforePublish:     c.endPull,
			PublishTakeover:   true,
			LatencyFor:        c.linkLatency,
			DSCP:              cfg.DSCP,
			EveryLossReport:   true,
			Divert:            c.divert,
			Budget:            cfg.Budget,
			BudgetCountOnly:   true, // members only: a public flood must not keep uplinks out
		}, hub, log.With("listener", "backbone"))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("backbone: %w", err)
		}
		c.srt = s
	}
	if cfg.Events != nil {
		c.sub = cfg.Events.Subscribe("center", 0) // now: nothing published before Run is missed
	}
	return c, nil
}

// Addr returns the backbone listener's address, or nil.
func (c *Center) Addr() net.Addr {
	if c.srt == nil {
		return nil
	}
	return c.srt.Addr()
}

// Backbone returns the backbone listener (its Stats), or nil.
func (c *Center) Backbone() *srt.Server { return c.srt }

// authorize admits only cluster members on the backbone. It runs inside
// the SRT handshake and does not wait; a publisher's on-demand pull of
// the same stream is ended after the handshake (BeforePublish).
func (c *Center) authorize(req media.Access) error {
	_, err := c.memberAt(req.Remote)
	return err
}

// linkLatency is the SRT latency of a backbone connection from remote:
// from the measured RTT to that node, as the caller computes its own
// (0 = the listener's default when the RTT is unknown).
func (c *Center) linkLatency(remote net.Addr) time.Duration {
	name, err := c.memberAt(remote)
	if err != nil {
		return 0
	}
	rtt, ok := c.cl.RTT(name)
	if !ok || rtt <= 0 {
		return 0
	}
	return c.cfg.Latency(rtt)
}

// endPull stops an on-demand pull of key because the stream itself
// arrives here now (an edge moved its uplink here), and waits (bounded)
// until the pull and its pending replacement ended: their publishers let
// go of the stream.
func (c *Center) endPull(key string) {
	c.mu.Lock()
	pl := c.pulls[key]
	var ends []<-chan struct{}
	if pl != nil {
		pl.stop()
		ends = append(ends, pl.done)
		if pl.next != nil {
			ends = append(ends, pl.next.done)
		}
	}
	c.mu.Unlock()
	if pl == nil {
		return
	}
	c.log.Info("stream arrives over the backbone: ending its on-demand pull", "stream", key)
	bound := time.NewTimer(time.Second)
	defer bound.Stop()
	for _, done := range ends {
		select {
		case <-done:
		case <-bound.C:
			c.log.Warn("the on-demand pull did not end within 1s; the uplink takes the stream over", "stream", key)
			return
		}
	}
}

// memberAt returns the name of the cluster member at remote's address.
func (c *Center) memberAt(remote net.Addr) (string, error) {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrNotMember, remote)
	}
	ip := ap.Addr().Unmap()
	// A member that left counts too: a node that restarted is "left"
	// here until the news of its rejoin arrives, which may be after its
	// first uplink when it rejoined through another center. (A member
	// whose address another one took is the other one.)
	left := ""
	for _, m := range c.cl.Members() {
		if m.Addr.Addr().Unmap() != ip {
			continue
		}
		if m.State != gossip.StateLeft {
			return m.Name, nil
		}
		left = m.Name
	}
	if left != "" {
		return left, nil
	}
	return "", fmt.Errorf("%w: %s is no member's address", ErrNotMember, ip)
}

// Run serves the backbone until ctx ends.
func (c *Center) Run(ctx context.Context) error {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.followDirectory(c.ctx) // Run ends with Close, which ends c.ctx
	}()
	if c.sub != nil {
		c.wg.Go(func() { c.sub.Run(c.ctx, c.HandleEvent) })
	}
	if c.srt == nil {
		select {
		case <-ctx.Done():
		case <-c.ctx.Done():
		}
		return c.Close()
	}
	err := c.srt.Run(ctx)
	c.Close()
	return err
}

// Close stops the listener and every pull. It is idempotent.
func (c *Center) Close() error {
	c.once.Do(func() {
		c.cancel()
		if c.srt != nil {
			c.srt.Close()
		}
		c.wg.Wait()
		if c.sub != nil {
			c.sub.Close()
		}
	})
	return nil
}

// HandleEvent follows the node's event bus: a stream that goes live here
// (or gets a new publisher) is recorded in the directory, one that ends is
// removed. Its subscription runs it on one goroutine, in order.
func (c *Center) HandleEvent(r events.Record) {
	switch e := r.Event.(type) {
	case events.StreamPublished:
		c.streamLive(e.Stream, e.Protocol)
	case events.StreamReconnected:
		c.streamLive(e.Stream, e.Protocol)
	case events.StreamEnded:
		c.streamEnded(e.Stream)
	case events.Missed:
		c.log.Warn("missed node events; making the directory match the streams hosted here", "missed", e.N)
		c.resync()
	}
}

// resync makes the directory match the hub after lost events (which may
// have said a stream went live or ended): every stream live here is
// announced, and every entry of this node's whose stream is gone from the
// hub is removed. A stream in its reconnect grace keeps its entry, as it
// does when no event is lost.
func (c *Center) resync() {
	here := map[string]bool{}
	for _, st := range c.hub.Streams() {
		here[st.Key()] = true
		if pi, ok := st.Publisher(); ok {
			c.streamLive(st.Key(), pi.Protocol)
		}
	}
	for _, e := range c.cl.Directory() {
		if e.Node == c.cl.Name() && !here[e.Stream] && !isDualHostKey(e.Stream) {
			c.streamEnded(e.Stream)
		}
	}
}

// streamLive records in the directory that this node hosts key, unless
// its publisher is an on-demand copy of another center's stream. A stream
// that arrives here (an edge moved its uplink here) while it was pulled
// from another center ends the pull.
func (c *Center) streamLive(key, protocol string) {
	if protocol == pullProtocol {
		return
	}
	c.mu.Lock()
	if pl := c.pulls[key]; pl != nil {
		pl.stop()
	}
	c.mu.Unlock()
	if err := c.cl.Publish(key); err != nil {
		c.log.Warn("directory publish failed", "stream", key, "err", err)
	}
}

// streamEnded removes key from the directory if this node hosts it (a
// no-op for pulled copies: another node hosts them).
func (c *Center) streamEnded(key string) {
	if err := c.cl.Unpublish(key); err != nil {
		c.log.Warn("directory unpublish failed", "stream", key, "err", err)
	}
}

// Missing starts an on-demand pull of key from the center hosting it,
// when another one does. The hub calls it in its own goroutine while a
// player waits; it waits up to PlayWait for the directory to name a host:
// right after this node started, its directory is empty until the first
// sync with a peer, and a stream may be published a moment later.
func (c *Center) Missing(key string) {
	wctx, wcancel := context.WithTimeout(c.ctx, c.cfg.PlayWait)
	e, ok := c.cl.WaitLookup(wctx, key)
	wcancel()
	if !ok || e.Node == c.cl.Name() {
		c.log.Debug("player waits for a stream no center hosts", "stream", key)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pulls[key] != nil || c.ctx.Err() != nil {
		return
	}
	pl := c.startPullLocked(key, c.source(key, e), nil, false)
	c.pulls[key] = pl
	c.ensureStandbyLocked(key, pl)
}

// startPullLocked starts a pull of key from the host the directory names
// (from, at start). A replacement (of old) takes the stream over once old
// has delivered up to its first keyframe (link.Splice) and only then ends
// old: make-before-break. So does one of
// an abandoned uplink's stream (takesUplink, see releaseUplinks): the
// uplink is the old side of its splice.
func (c *Center) startPullLocked(key, from string, old *pull, takesUplink bool) *pull {
	pl := &pull{from: from, done: make(chan struct{})}
	log := c.log.With("stream", key)
	var failedNode string
	var failedVersion uint64
	var failedAt time.Time
	cfg := link.PullConfig{
		Key: key, MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		ReadTimeout: 5 * time.Second, IdleStop: c.cfg.PullIdleStop,
		Next: func(attempt int, lastErr error) (link.Target, error) {
			e, ok := c.cl.Lookup(key)
			if !ok {
				return link.Target{}, fmt.Errorf("%s is in no center's directory", key)
			}
			if e.Node == c.cl.Name() {
				return link.Target{}, fmt.Errorf("%s is now hosted here", key)
			}
			c.mu.Lock()
			prev, replaced := pl.from, pl.next != nil
			nextFrom := ""
			if replaced {
				nextFrom = pl.next.from
			}
			c.mu.Unlock()
			if replaced {
				// its replacement takes the stream over as a
				// continuing session; dialed here too, the new host's
				// first packet could come as a new session of this
				// pull (the players then wait for a keyframe)
				return link.Target{}, fmt.Errorf("its replacement from %s takes the stream over", nextFrom)
			}
			// a host found dead gives way to another host of a dual-path
			// stream at once (source)
			from := c.source(key, e)
			if lastErr != nil && failedNode == "" {
				failedNode, failedVersion, failedAt = prev, e.Version, time.Now()
			}
			// The source failed: wait for the directory to name another
			// center (the edge re-routes) rather than dial a dead one, for
			// a while.
			if failedNode != "" && from == failedNode && e.Version == failedVersion && time.Since(failedAt) < 5*time.Second {
				return link.Target{}, fmt.Errorf("source %s failed; waiting for the stream to move", failedNode)
			}
			failedNode = ""
			t, rtt, err := c.pullTarget(key, from)
			if err != nil {
				return t, err
			}
			c.mu.Lock()
			pl.from = from
			c.mu.Unlock()
			if prev != from || attempt == 0 {
				log.Info("on-demand pull", "from", from, "rtt", rtt.String(), "directory", e.Node)
			}
			return t, nil
		},
		OnEnd: func(err error) {
			c.mu.Lock()
			from := pl.from
			c.mu.Unlock()
			c.noteFailure(from, err)
		},
	}
	if old != nil || takesUplink {
		cfg.Takeover = true
		// the new host passes the same edge's TS as the old one: the
		// switch drops what the old pull delivered already
		cfg.Continues = true
	}
	if old != nil {
		// it waits until the old pull delivered up to its first
		// keyframe, so the switch neither skips nor repeats a frame
		// (or switches at once when the new pull is behind). So does
		// the move away from a leaving host (the drain): it serves
		// until no pull reads from it. Not from a suspect or dead host:
		// its pull delivers nothing, so the splice would only hold the
		// new pull's packets for its stall bound (1 s); taking over at
		// the first packet is right there.
		//
		// (With the splice on for a leaving host, the third center of
		// TestClusterDrainOnRestart lost 101-122 frames by the
		// timestamps: its new pull was ~550 ms behind, so the splice
		// waited 3.5 s until the host closed, and the new pull's codec
		// headers, stamped at its first keyframe, then went out 3.5 s
		// back: the hub took that for a clock stepping back and rebased
		// the session 4.8 s forward. link.spliceState now switches at
		// once when the new pull is behind and stamps the headers it
		// releases with the time they go out at.)
		if m, ok := c.cl.Member(old.from); ok && !m.Unreachable && (m.State == gossip.StateAlive || m.State == gossip.StateLeft) {
			cfg.Splice = link.NewSplice(log)
			old.p.HandOver(cfg.Splice)
		} else {
			log.Info("on-demand pull: the old host is suspect or dead, the new pull takes over at its first packet", "from", old.from)
		}
		cfg.OnState = func(st link.Status) {
			if st.State == link.StateRunning {
				c.promote(key, old, pl)
			}
		}
	}
	if takesUplink {
		// the uplink here is the old side of the splice: its packets
		// go through it from now on
		sp := link.NewSplice(log)
		if hs := c.hub.Stream(key); hs == nil {
			log.Info("uplink abandoned: the stream ended meanwhile")
		} else if pi, ok := hs.Publisher(); ok && hs.RoutePublisher(pi.Protocol, sp.Route) {
			cfg.Splice = sp
		} else {
			log.Info("uplink abandoned: it ended meanwhile, the pull takes over at its first packet")
		}
	}
	pl.p = link.NewPuller(c.hub, cfg, log)
	c.goPull(pl, func() {
		switch cur := c.pulls[key]; {
		case cur == pl && pl.next != nil:
			// it ended before its replacement delivered: the
			// replacement is the pull of key now, not an orphan
			c.pulls[key] = pl.next
			pl.stopStandby()
		case cur == pl:
			delete(c.pulls, key)
			pl.stopStandby()
		case cur != nil && cur.next == pl:
			cur.next = nil
		}
		log.Info("on-demand pull stopped", "from", pl.from)
	})
	return pl
}

// goPull runs pl's Puller until it ends or pl.cancel, then ended with
// c.mu held.
func (c *Center) goPull(pl *pull, ended func()) {
	ctx, cancel := context.WithCancel(c.ctx)
	pl.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		defer close(pl.done)
		pl.p.Run(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		ended()
	}()
}

// pullTarget is the backbone read of key from center node, and the RTT
// it is set up for.
func (c *Center) pullTarget(key, node string) (link.Target, time.Duration, error) {
	return c.backboneTarget(node, "read:"+key)
}

// backboneTarget is a backbone link to center node with SRT stream id
// sid, and the RTT it is set up for.
func (c *Center) backboneTarget(node, sid string) (link.Target, time.Duration, error) {
	m, ok := c.cl.Member(node)
	if !ok || m.Meta.Addrs.Backbone == "" {
		return link.Target{}, 0, fmt.Errorf("center %s has no backbone address", node)
	}
	rtt, _ := c.cl.RTT(node)
	rtt = link.BackboneRTT(c.ctx, rtt, m.RTTKnown, m.Meta.Addrs.Backbone) // not measured yet: timed
	return link.Target{
		URL:             "srt://" + m.Meta.Addrs.Backbone + "?streamid=" + url.QueryEscape(sid),
		Passphrase:      c.cfg.Passphrase,
		PBKeyLen:        c.cfg.PBKeyLen,
		Latency:         c.cfg.Latency(rtt),
		PeerIdleTimeout: c.cfg.IdleTimeout,
		DSCP:            c.cfg.DSCP,
		ConnectTimeout:  link.ConnectTimeoutFor(rtt),
		EveryLossReport: true,
		// a killed peer ends the link at its first port unreachable
		// (~20 ms), a silent one within a few RTTs, not after
		// libsrt's idle timeout (seconds)
		WatchPeer: true,
	}, rtt, nil
}

// noteFailure marks node unreachable in gossip when a backbone link to it
// ended with err because the peer is dead (the link watch: its port
// refused or silent) or a dial got no answer: until node answers a ping
// again, pulls and standbys avoid it (source, usable), and a dual-path
// center claims a stream it named (peerLost), without waiting seconds
// for gossip to suspect it. A refused handshake is a live listener.
func (c *Center) noteFailure(node string, err error) {
	if node == "" || err == nil || !(errors.Is(err, libsrt.ErrPeerDead) || errors.Is(err, link.ErrNoAnswer)) {
		return
	}
	if m, ok := c.cl.Member(node); ok && m.Unreachable {
		return
	}
	c.log.Info("backbone peer found dead by its link: avoided until it answers gossip again", "node", node, "err", err)
	c.cl.MarkUnreachable(node)
}

// usable says whether this node may read a stream from center node: gossip
// calls it alive and no link found it dead since its last ping answer.
func (c *Center) usable(node string) bool {
	m, ok := c.cl.Member(node)
	return ok && m.State == gossip.StateAlive && !m.Unreachable
}

// source is the center to pull key from when the directory says e: the
// host it names, unless that one is not usable (a link found it dead, or
// gossip suspects it) and another host of the dual-path stream is. The
// pull moves there at once instead of waiting for gossip to declare the
// named host dead or the survivor to claim the stream. A single-path
// stream has one host: its edge re-places its uplink, and the directory
// follows.
func (c *Center) source(key string, e gossip.DirEntry) string {
	if c.usable(e.Node) {
		return e.Node
	}
	for _, h := range c.dualHosts(key) {
		if h != e.Node && h != c.cl.Name() && c.usable(h) {
			return h
		}
	}
	return e.Node
}

// promote makes the replacement pl the pull of key once it delivers (it
// took the stream over in the hub), and ends old.
func (c *Center) promote(key string, old, pl *pull) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pulls[key] != old || old.next != pl {
		return
	}
	c.log.Info("on-demand pull moved: the new source delivers, closing the old", "stream", key, "from", old.from, "to", pl.from)
	old.next = nil
	old.cancel()
	c.pulls[key] = pl
	c.ensureStandbyLocked(key, pl)
}

// followDirectory moves on-demand pulls to the center the directory names
// as soon as it names another one (the edge moved its uplink), rather than
// when the old source falls silent.
func (c *Center) followDirectory(ctx context.Context) {
	for {
		changed := c.cl.DirectoryChanged()
		c.mu.Lock()
		for key, pl := range c.pulls {
			if pl.next != nil {
				continue
			}
			e, ok := c.cl.Lookup(key)
			if !ok || e.Node == c.cl.Name() {
				c.ensureStandbyLocked(key, pl)
				continue
			}
			to := c.source(key, e)
			if pl.standby != nil && to == pl.standby.from {
				// the standby is the make-before-break: it takes over
				// when this pull ends or stalls
				continue
			}
			if to == pl.from || c.bothHost(key, pl.from, to) {
				// both centers of a dual-path stream host it: the
				// directory naming the other one is no move
				c.ensureStandbyLocked(key, pl)
				continue
			}
			pl.stopStandby() // the replacement's splice takes this pull's packets
			c.log.Info("on-demand pull follows the directory: pulling from the new host before closing the old", "stream", key, "from", pl.from, "to", to)
			pl.next = c.startPullLocked(key, to, pl, false)
		}
		c.mu.Unlock()
		c.releaseUplinks()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// Pulls returns the on-demand pulls, sorted by stream.
func (c *Center) Pulls() []PullStatus {
	c.mu.Lock()
	out := make([]PullStatus, 0, len(c.pulls))
	var sbs []*pull
	for k, p := range c.pulls {
		out = append(out, PullStatus{Stream: k, From: p.from, Link: p.p.Status()})
		sbs = append(sbs, p.standby)
	}
	c.mu.Unlock()
	// a standby's splice is read without c.mu: its take-over, under the
	// splice's lock, takes c.mu
	for i, sb := range sbs {
		if sb != nil {
			out[i].Standby = &StandbyStatus{From: sb.from, Link: sb.p.Status(), Buffer: sb.sp.Standby()}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}
