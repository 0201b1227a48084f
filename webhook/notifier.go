package webhook

// Notifier sends the node's events (package events) as webhooks: it
// follows the bus in order, maps each event to its webhook name and data,
// and keeps one Sender in force for the [webhooks] the node runs with.

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/relaymesh/relaymesh/events"
)

// The webhook events a node sends (webhooks.events names a subset).
const (
	EventStreamPublished   = "stream.published"   // {"stream", "protocol"}
	EventStreamReconnected = "stream.reconnected" // {"stream", "protocol", "takeover"}
	EventStreamUnpublished = "stream.unpublished" // {"stream", "reason"}
	EventStreamFailover    = "stream.failover"    // {"flow", "stream", "from", "to", "direction", "reason", "gap_ms"}
	EventMemberJoin        = "member.join"        // {"member", "role", "site", "region", "addr"}
	EventMemberLeave       = "member.leave"       // {"member", ..., "state": "left"|"failed", "streams"}
)

// Events lists every event a Notifier sends, in the order logs name them.
var Events = []string{EventStreamPublished, EventStreamReconnected, EventStreamUnpublished, EventStreamFailover, EventMemberJoin, EventMemberLeave}

// NotifierConfig is what a Notifier sends and where.
type NotifierConfig struct {
	URL    string // "" sends nothing
	Secret []byte // HMAC key; nil leaves requests unsigned
	Node   string // the body's "node"
	// Events are the webhook names sent; empty sends all.
	Events []string
}

// Notifier is the node's webhook part.
type Notifier struct {
	log   *slog.Logger
	sub   *events.Subscription
	other func(events.Record)

	mu     sync.Mutex
	run    *senderRun // nil when URL is ""
	cfg    NotifierConfig
	events map[string]bool // nil = all
	// runCtx is set while Run runs, so a sender built by Set can start;
	// senders run under wg. It ends after the last event was handed to
	// the sender, so a shutdown's events are flushed.
	runCtx context.Context
	wg     sync.WaitGroup
}

// senderRun is one Sender and the cancel of its Run.
type senderRun struct {
	s      *Sender
	cancel context.CancelFunc
}

// NewNotifier follows sub (taken by the caller before Run, so nothing
// published in between is missed; its name labels the bus's metrics) and
// puts cfg in force. other, if not nil, sees every event first, on the
// same ordered subscription (the node logs its events there).
func NewNotifier(sub *events.Subscription, cfg NotifierConfig, log *slog.Logger, other func(events.Record)) *Notifier {
	n := &Notifier{log: log, sub: sub, other: other}
	n.Set(cfg)
	return n
}

// Run sends the bus's events until ctx ends; the events queued by then
// (streams ended by a drain) still go to the sender, which then flushes
// (bounded by its FlushTimeout).
func (n *Notifier) Run(ctx context.Context) error {
	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	n.mu.Lock()
	n.runCtx = hctx
	if n.run != nil {
		n.startLocked(n.run)
	}
	n.mu.Unlock()
	n.sub.Run(ctx, n.event)
	stop()
	n.wg.Wait()
	return nil
}

// startLocked runs r under n.runCtx; n.mu is held.
func (n *Notifier) startLocked(r *senderRun) {
	ctx, cancel := context.WithCancel(n.runCtx)
	r.cancel = cancel
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		r.s.Run(ctx)
	}()
}

// Set puts cfg in force, replacing the sender when the URL or the secret
// changed. The old sender flushes what it holds in the background. It
// cannot fail: the URL is validated with the config.
func (n *Notifier) Set(cfg NotifierConfig) {
	var evs map[string]bool
	if len(cfg.Events) > 0 {
		evs = map[string]bool{}
		for _, e := range cfg.Events {
			evs[e] = true
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = evs
	if n.run != nil && cfg.URL == n.cfg.URL && bytes.Equal(cfg.Secret, n.cfg.Secret) {
		n.cfg = cfg
		return
	}
	old := n.run
	n.run, n.cfg = nil, cfg
	if cfg.URL != "" {
		n.run = &senderRun{s: New(Config{URL: cfg.URL, Secret: cfg.Secret, Node: cfg.Node}, n.log)}
		if n.runCtx != nil {
			n.startLocked(n.run)
		}
		n.log.Info("webhooks on", "url", cfg.URL, "signed", cfg.Secret != nil, "events", eventsList(evs))
	} else if old != nil {
		n.log.Info("webhooks off")
	}
	if old != nil {
		if old.cancel != nil {
			old.cancel() // flushes its queue, then its Run returns
		} else {
			old.s.Close()
		}
	}
}

func eventsList(m map[string]bool) string {
	if m == nil {
		return "all"
	}
	return strings.Join(slices.DeleteFunc(slices.Clone(Events), func(e string) bool { return !m[e] }), ",")
}

// Stats returns the sender's counters, if webhooks are on.
func (n *Notifier) Stats() (Stats, bool) {
	n.mu.Lock()
	r := n.run
	n.mu.Unlock()
	if r == nil {
		return Stats{}, false
	}
	return r.s.Stats(), true
}

// Close stops the subscription and the sender in force at once; it is
// idempotent.
func (n *Notifier) Close() error {
	n.mu.Lock()
	r := n.run
	n.run = nil
	n.mu.Unlock()
	n.sub.Close()
	if r != nil {
		r.s.Close()
	}
	return nil
}

// send queues a webhook if webhooks are on and name is among the events
// sent. It never blocks; data is marshalled to JSON at once.
func (n *Notifier) send(name string, data any) {
	n.mu.Lock()
	r, evs := n.run, n.events
	n.mu.Unlock()
	if r == nil || (evs != nil && !evs[name]) {
		return
	}
	r.s.Send(name, data)
}

// event sends the webhook of one node event.
func (n *Notifier) event(r events.Record) {
	if n.other != nil {
		n.other(r)
	}
	switch e := r.Event.(type) {
	case events.StreamPublished:
		n.send(EventStreamPublished, map[string]any{"stream": e.Stream, "protocol": e.Protocol})
	case events.StreamReconnected:
		n.send(EventStreamReconnected, map[string]any{"stream": e.Stream, "protocol": e.Protocol, "takeover": e.Takeover})
	case events.StreamEnded:
		n.send(EventStreamUnpublished, map[string]any{"stream": e.Stream, "reason": e.Reason})
	case events.FlowSwitched:
		dir := "backup->primary"
		if e.Failover {
			dir = "primary->backup"
		}
		n.send(EventStreamFailover, map[string]any{"flow": e.Flow, "stream": e.Stream, "from": e.From, "to": e.To,
			"direction": dir, "reason": e.Reason, "gap_ms": e.GapMS})
	case events.MemberJoined:
		n.send(EventMemberJoin, memberData(e.Member))
	case events.MemberLeft:
		n.send(EventMemberLeave, memberLeave(e.Member, "left", e.Streams))
	case events.MemberFailed:
		n.send(EventMemberLeave, memberLeave(e.Member, "failed", e.Streams))
	case events.Missed:
		n.log.Warn("webhooks missed node events: the ops subscriber fell behind", "missed", e.N, "first_seq", e.First, "last_seq", e.Last)
	}
}

// memberData is a member.join's data.
func memberData(m events.Member) map[string]any {
	return map[string]any{"member": m.Name, "role": m.Role, "site": m.Site, "region": m.Region, "addr": m.Addr}
}

// memberLeave is a member.leave's data; streams is a JSON list even when
// empty.
func memberLeave(m events.Member, state string, streams []string) map[string]any {
	d := memberData(m)
	d["state"], d["streams"] = state, append([]string{}, streams...)
	return d
}
