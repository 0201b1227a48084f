// Package edge is the edge role's cluster part: every stream published on
// the node gets an uplink, an SRT push over the backbone to a live center
// chosen by route rules and RTT, which fails over to the next center when
// the link dies (the SRT link's own idle timeout) or gossip declares the
// center failed or gone.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
)

// Cluster is what the uplinks need from gossip (a *gossip.Cluster).
type Cluster interface {
	Name() string
	CenterCandidates(stream string, rules []gossip.Route, exclude []string) []gossip.Member
	RTT(node string) (time.Duration, bool)
	Members() []gossip.Member
}

// Config tunes the uplinks. It can change on reload (SetConfig).
type Config struct {
	Routes     []gossip.Route
	Passphrase string // backbone AES passphrase; "" = unencrypted
	PBKeyLen   int    // 16, 24 or 32 (0 = 32)
	// Latency returns the SRT latency of a link with the given RTT (0 when
	// unknown); nil = 4x RTT, at least 120ms.
	Latency     func(rtt time.Duration) time.Duration
	DSCP        int           // mark for backbone packets; 0 = unmarked
	IdleTimeout time.Duration // link silence before the center counts as dead (default 1s)
	// ExcludeFor is how long a center that failed a stream is avoided for
	// it (default 15s).
	ExcludeFor time.Duration
	// Events is the node's event bus: the uplinks follow it (streams
	// published here, centers that left or failed; the subscription is
	// taken by New, run by Run) and publish a LinkMoved when an uplink
	// moves to another center; nil = none. It cannot change on reload.
	Events *events.Bus
	// Replace tunes the moves of uplinks to a clearly better center.
	Replace Replacement
	// Redundancy picks the streams sent over two legs (dual.go).
	Redundancy []Redundancy
}

// Status is one uplink for the API.
type Status struct {
	Stream string    `json:"stream"`
	Center string    `json:"center"`
	Since  time.Time `json:"center_since"`
	Moves  int       `json:"moves"`
	// Replacements counts the moves to a better center (re-placement).
	Replacements int         `json:"replacements"`
	Relay        link.Status `json:"link"`
}

// Uplinks runs one backbone push per stream published on this node.
type Uplinks struct {
	hub *media.Hub
	cl  Cluster
	log *slog.Logger

	mu      sync.Mutex
	cfg     Config
	ctx     context.Context
	links   map[string]*uplink
	duals   map[string]*dualUplink // dual.go
	wg      sync.WaitGroup
	started chan struct{}
	closed  bool
	cancel  context.CancelFunc
	once    sync.Once
	// replaced counts re-placements (Replacements)
	replaced atomic.Uint64
	status   func(*uplink) (link.Status, bool) // linkStatus; tests replace it
	sub      *events.Subscription              // of cfg.Events; nil without a bus
	// healthMoves counts moves away from an unhealthy link (HealthMoves)
	healthMoves atomic.Uint64
}

type uplink struct {
	key     string
	center  string
	since   time.Time
	moves   int
	exclude map[string]time.Time
	// noAnswer counts connects to the current center that got no answer
	noAnswer int
	moveWhy  string       // why the link to center ended, for LinkMoved
	movedAt  time.Time    // last move to another center
	replaced int          // re-placements
	better   placement    // a clearly better center seen (re-placement)
	drops    []dropSample // the link's drop counter, recent samples (health)
	p        *link.Pusher
	cancel   context.CancelFunc // of the current pusher
	cur      *handoff           // the pusher run waits for
	next     *handoff           // a make-before-break move under way
	adopt    *handoff           // a move that delivered: run continues with it
}

// handoff is a second pusher to another center started while the current
// one still runs (make-before-break); it replaces the current one once
// its link runs.
type handoff struct {
	center  string // where it pushes
	retired bool   // replaced by a move: it ends and is not re-routed
	p       *link.Pusher
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns the uplinks; they start with Run.
func New(cfg Config, hub *media.Hub, cl Cluster, log *slog.Logger) (*Uplinks, error) {
	if hub == nil || cl == nil {
		return nil, errors.New("edge: hub and cluster are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &Uplinks{hub: hub, cl: cl, log: log.With("component", "uplink"), cfg: fill(cfg), ctx: ctx, cancel: cancel,
		links: map[string]*uplink{}, started: make(chan struct{}), status: linkStatus}
	if cfg.Events != nil {
		u.sub = cfg.Events.Subscribe("edge", 0) // now: nothing published before Run is missed
	}
	return u, nil
}

func fill(c Config) Config {
	if c.PBKeyLen == 0 {
		c.PBKeyLen = 32
	}
	if c.Latency == nil {
		c.Latency = func(rtt time.Duration) time.Duration { return max(4*rtt, 120*time.Millisecond) }
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Second
	}
	if c.ExcludeFor == 0 {
		c.ExcludeFor = 15 * time.Second
	}
	c.Replace = c.Replace.fill()
	return c
}

// SetConfig applies a new config to the next (re)connects.
func (u *Uplinks) SetConfig(cfg Config) {
	u.mu.Lock()
	u.cfg = fill(cfg)
	u.mu.Unlock()
}

// Run blocks until ctx ends, then stops every uplink.
func (u *Uplinks) Run(ctx context.Context) error {
	u.wg.Add(1)
	go func() { defer u.wg.Done(); u.replaceLoop(u.ctx) }()
	if u.sub != nil {
		u.wg.Go(func() { u.sub.Run(u.ctx, u.HandleEvent) })
	}
	select {
	case <-ctx.Done():
	case <-u.ctx.Done():
	}
	return u.Close()
}

// Close stops every uplink and waits for them. It is idempotent.
func (u *Uplinks) Close() error {
	u.once.Do(func() {
		u.mu.Lock()
		u.closed = true
		u.mu.Unlock()
		u.cancel()
		u.wg.Wait()
		if u.sub != nil {
			u.sub.Close()
		}
	})
	return nil
}

// HandleEvent follows the node's event bus: a stream that goes live here
// gets its uplink; a center that left or failed loses its uplinks to the
// next one at once. Its subscription runs it on one goroutine, in order.
func (u *Uplinks) HandleEvent(r events.Record) {
	switch e := r.Event.(type) {
	case events.StreamPublished:
		u.streamLive(e.Stream)
	case events.StreamReconnected:
		u.streamLive(e.Stream) // a no-op while its uplink runs
	case events.MemberLeft:
		// a leaving center drains: it still serves until its uplinks
		// moved, so the move is make-before-break
		u.moveAway(e.Member.Name, "center left the cluster")
		u.dualGone(e.Member.Name)
	case events.MemberFailed:
		u.memberGone(e.Member.Name, "center failed")
		u.dualGone(e.Member.Name)
	case events.Missed:
		u.log.Warn("missed node events; checking every live stream has an uplink", "missed", e.N)
		for _, st := range u.hub.Streams() {
			u.streamLive(st.Key())
		}
	}
}

// streamLive starts the uplink of key unless it runs already.
func (u *Uplinks) streamLive(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.links[key] != nil || u.startDualLocked(key) {
		return
	}
	l := &uplink{key: key, exclude: map[string]time.Time{}}
	u.links[key] = l
	u.wg.Add(1)
	go u.run(l)
}

// memberGone re-routes every uplink using center name at once (gossip
// declared it failed, or it left).
func (u *Uplinks) memberGone(name, why string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.links {
		if l.center == name && l.cancel != nil {
			u.log.Info("center gone: re-routing", "stream", l.key, "center", name, "reason", why)
			l.exclude[name] = time.Now()
			l.moveWhy = why
			l.cancel()
		}
	}
}

// Streams returns the uplinks, sorted by stream.
func (u *Uplinks) Streams() []Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]Status, 0, len(u.links))
	for _, l := range u.links {
		s := Status{Stream: l.key, Center: l.center, Since: l.since, Moves: l.moves, Replacements: l.replaced}
		if l.p != nil {
			s.Relay = l.p.Status()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// run keeps a pusher for l until the stream ends or the uplinks close. A
// re-route (memberGone) ends the current pusher and starts a new one; a
// make-before-break move (moveAway) hands the uplink over to the move's
// pusher once it runs.
func (u *Uplinks) run(l *uplink) {
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		delete(u.links, l.key)
		if l.next != nil {
			l.next.cancel()
		}
		u.mu.Unlock()
	}()
	var cur *handoff
	for {
		if cur == nil {
			ctx, cancel := context.WithCancel(u.ctx)
			h := &handoff{ctx: ctx, cancel: cancel, done: make(chan struct{})}
			h.p = link.NewPusher(u.hub, link.PushConfig{Key: l.key, Next: func(attempt int, lastErr error) (link.Target, error) {
				u.mu.Lock()
				retired := h.retired
				u.mu.Unlock()
				if retired {
					return link.Target{}, fmt.Errorf("uplink moved: %w", link.ErrStop)
				}
				return u.next(l, attempt, lastErr)
			}, MinBackoff: 200 * time.Millisecond, MaxBackoff: 3 * time.Second}, u.log.With("stream", l.key))
			cur = h
			u.mu.Lock()
			l.p, l.cancel = h.p, cancel
			u.mu.Unlock()
			go func(h *handoff) { h.p.Run(h.ctx); close(h.done) }(cur)
		}
		u.mu.Lock()
		l.cur = cur
		u.mu.Unlock()
		<-cur.done
		rerouted := cur.ctx.Err() != nil && u.ctx.Err() == nil
		cur.cancel()
		u.mu.Lock()
		next := l.adopt
		l.adopt = nil
		u.mu.Unlock()
		if next != nil {
			cur = next // the move's pusher runs already
			continue
		}
		cur = nil
		if !rerouted || u.hub.Stream(l.key) == nil {
			if u.ctx.Err() == nil {
				u.log.Info("uplink ended", "stream", l.key)
			}
			return
		}
	}
}

// drainOverlap bounds how long the old link of a make-before-break move
// away from a leaving center runs on beside the new one.
const drainOverlap = 5 * time.Second

// moveAway moves every uplink using center name to the next center,
// make-before-break: a second link to the new center starts while the
// old one still runs, and the old one is closed once the new one runs.
// An uplink whose move cannot start is re-routed at once (memberGone).
func (u *Uplinks) moveAway(name, why string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.links {
		if l.center != name || l.cancel == nil || l.next != nil {
			continue
		}
		l.exclude[name] = time.Now()
		if err := u.startMoveLocked(l, why); err != nil {
			u.log.Info("center gone: re-routing", "stream", l.key, "center", name, "reason", why, "move", err.Error())
			l.moveWhy = why
			l.cancel()
		}
	}
}

// startMoveLocked starts the make-before-break pusher of l to the best
// center outside l's excluded ones.
func (u *Uplinks) startMoveLocked(l *uplink, why string) error {
	var ex []string
	for name := range l.exclude {
		ex = append(ex, name)
	}
	cands := u.cl.CenterCandidates(l.key, u.cfg.Routes, ex)
	if len(cands) == 0 {
		return fmt.Errorf("stream %s: %w", l.key, gossip.ErrNoCenter)
	}
	return u.startMoveToLocked(l, move{to: cands[0], why: why})
}

// move is a make-before-break move of an uplink to center to: away from
// a leaving center, or a re-placement onto a better one.
type move struct {
	to             gossip.Member
	why            string
	replace        bool
	health         bool          // away from an unhealthy link
	fromRTT, toRTT time.Duration // re-placement: the two centers' RTTs
}

// startMoveToLocked starts the make-before-break pusher of l to mv.to.
func (u *Uplinks) startMoveToLocked(l *uplink, mv move) error {
	dest, why := mv.to, mv.why
	to := dest.Name
	ctx, cancel := context.WithCancel(u.ctx)
	h := &handoff{center: to, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	promoted := false
	h.p = link.NewPusher(u.hub, link.PushConfig{Key: l.key,
		Next: func(attempt int, lastErr error) (link.Target, error) {
			u.mu.Lock()
			p := promoted
			u.mu.Unlock()
			if p {
				return u.next(l, attempt, lastErr) // it is the uplink now: usual failover
			}
			if attempt > 0 {
				// the new link failed before it ran: give up the move,
				// the old link keeps running
				u.mu.Lock()
				if l.next == h {
					l.next = nil
				}
				l.exclude[to] = time.Now() // no second try at once
				u.mu.Unlock()
				cancel() // nothing adopts it: release its context
				return link.Target{}, fmt.Errorf("move to %s failed: %w", to, link.ErrStop)
			}
			return u.target(l, dest)
		},
		OnState: func(st link.Status) {
			if st.State != link.StateRunning {
				return
			}
			u.mu.Lock()
			if promoted || l.next != h {
				u.mu.Unlock()
				return
			}
			promoted = true
			old := l.cancel
			if l.cur != nil {
				l.cur.retired = true
			}
			from := l.center
			l.next, l.adopt = nil, h
			l.p, l.cancel = h.p, h.cancel
			l.center, l.since, l.moveWhy = to, time.Now(), ""
			l.moves++
			l.movedAt = l.since
			if mv.replace {
				l.replaced++
			}
			cfg := u.cfg
			u.mu.Unlock()
			ev := events.LinkMoved{Stream: l.key, From: from, To: to, Reason: why}
			overlap := drainOverlap
			if mv.health {
				u.healthMoves.Add(1)
			}
			if mv.replace {
				u.replaced.Add(1)
				overlap = replaceOverlap
				ev.FromRTT, ev.ToRTT = mv.fromRTT, mv.toRTT
				u.log.Info("uplink re-placed make-before-break: the new link runs; the old center closes the old one once its readers moved",
					"stream", l.key, "from", from, "to", to, "from_rtt", mv.fromRTT.String(), "to_rtt", mv.toRTT.String(), "at_most", overlap.String())
			} else if mv.health {
				overlap = replaceOverlap
				u.log.Info("uplink moved make-before-break away from an unhealthy link: the new link runs; the old center closes the old one once its readers moved", "stream", l.key, "from", from, "to", to, "reason", why, "at_most", overlap.String())
			} else {
				u.log.Info("uplink moved make-before-break: the new link runs; the old one runs on until the leaving center closes it", "stream", l.key, "from", from, "to", to, "reason", why, "at_most", overlap.String())
			}
			cfg.Events.Publish(ev)
			// The old center keeps serving what it pulls to other
			// centers until their pulls moved to the new center, from
			// this old link; it closes the link when it is done.
			time.AfterFunc(overlap, old)
		},
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 3 * time.Second}, u.log.With("stream", l.key, "move_to", to))
	l.next = h
	u.log.Info("uplink moving make-before-break", "stream", l.key, "from", l.center, "to", to, "reason", why)
	u.wg.Add(1)
	go func() { defer u.wg.Done(); h.p.Run(h.ctx); close(h.done) }()
	return nil
}

// next picks the target of the next connect attempt: the best center not
// recently failed for this stream.
func (u *Uplinks) next(l *uplink, attempt int, lastErr error) (link.Target, error) {
	u.mu.Lock()
	cfg := u.cfg
	now := time.Now()
	if lastErr != nil && l.center != "" {
		u.log.Warn("backbone link to center failed", "stream", l.key, "center", l.center, "err", lastErr)
		// A connect that got no answer from a center gossip still sees
		// alive is tried once more before moving: on a lossy path one
		// lost handshake packet must not send the stream to a far center.
		// A link that died while running moves at once.
		l.noAnswer++
		if !errors.Is(lastErr, link.ErrNoAnswer) || l.noAnswer > 1 || !u.healthy(l.key, l.center, cfg.Routes) {
			l.exclude[l.center] = now
			l.noAnswer = 0
		}
	} else {
		l.noAnswer = 0
	}
	var ex []string
	for name, at := range l.exclude {
		if now.Sub(at) > cfg.ExcludeFor {
			delete(l.exclude, name)
			continue
		}
		ex = append(ex, name)
	}
	u.mu.Unlock()

	cands := u.cl.CenterCandidates(l.key, cfg.Routes, ex)
	if len(cands) == 0 && len(ex) > 0 {
		// Every candidate failed lately: try them again rather than none.
		cands = u.cl.CenterCandidates(l.key, cfg.Routes, nil)
	}
	if len(cands) == 0 {
		return link.Target{}, fmt.Errorf("stream %s: %w", l.key, gossip.ErrNoCenter)
	}
	m := cands[0]
	rtt, _ := u.cl.RTT(m.Name)
	u.mu.Lock()
	if l.center != m.Name {
		if l.center != "" {
			l.moves++
			why := l.moveWhy
			if lastErr != nil && why == "" {
				why = lastErr.Error()
			}
			u.log.Info("uplink moves to another center", "stream", l.key, "from", l.center, "to", m.Name, "reason", why, "rtt", rtt.String())
			cfg.Events.Publish(events.LinkMoved{Stream: l.key, From: l.center, To: m.Name, Reason: why})
		} else {
			// rtt_measured false: ranked by distance (or not at all)
			rs := "unknown"
			if m.RTTKnown {
				rs = rtt.String()
			}
			u.log.Info("uplink to center", "stream", l.key, "center", m.Name, "site", m.Meta.Site, "rtt", rs, "rtt_measured", m.RTTKnown)
		}
		if l.center != "" {
			l.movedAt = now
		}
		l.center, l.since, l.moveWhy = m.Name, now, ""
	}
	u.mu.Unlock()
	return u.target(l, m)
}

// target is the SRT push target of l to center m.
func (u *Uplinks) target(l *uplink, m gossip.Member) (link.Target, error) {
	if m.Meta.Addrs.Backbone == "" {
		return link.Target{}, fmt.Errorf("center %s advertises no backbone address", m.Name)
	}
	est, _ := u.cl.RTT(m.Name)
	// not measured yet (right after a start or a join): an estimate
	// from the sites' distance can be far too short (down to the
	// latency floor), so a handshake with the center is timed
	rtt := link.BackboneRTT(u.ctx, est, m.RTTKnown, m.Meta.Addrs.Backbone)
	if rtt != est {
		u.log.Info("uplink RTT probed", "stream", l.key, "center", m.Name, "rtt", rtt.String(), "estimate", est.String())
	}
	u.mu.Lock()
	cfg := u.cfg
	u.mu.Unlock()
	return link.Target{
		URL:             "srt://" + m.Meta.Addrs.Backbone + "?streamid=" + url.QueryEscape("publish:"+l.key),
		Passphrase:      cfg.Passphrase,
		PBKeyLen:        cfg.PBKeyLen,
		Latency:         cfg.Latency(rtt),
		PeerIdleTimeout: cfg.IdleTimeout,
		DSCP:            cfg.DSCP,
		ConnectTimeout:  link.ConnectTimeoutFor(rtt),
		// a killed or blackholed center is left within a few tenths of a second, not on
		// libsrt's idle detection (seconds)
		WatchPeer: true,
		// every frame over a lossy backbone: see link.Target
		EveryLossReport: true,
	}, nil
}

// healthy reports whether gossip still offers center as a candidate for
// the stream (alive, with capacity).
func (u *Uplinks) healthy(stream, center string, routes []gossip.Route) bool {
	for _, m := range u.cl.CenterCandidates(stream, routes, nil) {
		if m.Name == center {
			return true
		}
	}
	return false
}
