package agent

// This file wires operations into the agent: Prometheus metrics
// (metrics.go), webhooks for node events, and QoS over netlink on the
// backbone interface.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/metrics"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/webhook"
)

// opsState is the agent's ops part (Agent.ops).
type opsState struct {
	reg *prometheus.Registry

	mu sync.Mutex
	// webhooks: the sender in force (nil when [webhooks] url is ""), the
	// config and secret it was built from, and the events it sends (nil =
	// all).
	hooks      *hookRun
	hooksCfg   config.WebhooksConfig
	hookSecret []byte
	events     map[string]bool
	// sub follows the node's events for the logs and webhooks (opsEvent).
	sub *events.Subscription
	// runCtx is set while the ops runner runs, so a sender built on reload
	// can start; senders started run under hookWG. It ends after the last
	// event was handed to the sender, so a shutdown's events are flushed.
	runCtx context.Context
	hookWG sync.WaitGroup

	// qos is the tree in force (Enabled false when none); qosApplied is
	// false when the kernel refused (no CAP_NET_ADMIN).
	qos        netutil.QoSConfig
	qosApplied bool
	qosWarned  bool
	// installed is every tree the agent put on an interface and has not
	// removed yet, by interface; kept in the runtime directory's qos.json
	// for `relaymesh cleanup` (a.rtDir "" keeps no record).
	installed map[string]qosTree
}

// hookRun is one webhook sender and the cancel of its Run.
type hookRun struct {
	s      *webhook.Sender
	cancel context.CancelFunc
}

// newOps builds the metrics registry, the webhook sender and the QoS tree.
func (a *Agent) newOps(cfg *config.Config) error {
	o := &a.ops
	o.reg = prometheus.NewRegistry()
	o.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		metrics.New(metricsSource{a}),
		metrics.NewEvents(a.events),
	)
	if err := a.setWebhooks(cfg); err != nil {
		return err
	}
	o.sub = a.events.Subscribe("ops", 0)
	o.installed = map[string]qosTree{}
	if a.rtDir != "" {
		// trees a killed agent left: removed on close unless reapplied
		r, _, err := readQoSRecord(a.rtDir)
		if err != nil {
			a.log.Warn("qos: the record of installed trees is unreadable; starting a new one", "error", err)
		}
		for _, t := range r.Trees {
			o.installed[t.Interface] = t
		}
		if err := writeQoSRecord(a.rtDir, o.installed); err != nil {
			return fmt.Errorf("qos: keep the record of installed trees in %s (RUNTIME_DIRECTORY): %w", a.rtDir, err)
		}
	}
	a.add(a.runOps, a.closeOps)
	return a.setQoS(cfg.NetQoS())
}

// prepareOps reads the webhook secret of next and checks its QoS
// interface; commit swaps the webhook sender (which cannot fail: the URL
// was validated with the config and the secret is read here).
func (a *Agent) prepareOps(_, next *config.Config) (change, error) {
	secret, err := webhookSecret(next)
	if err != nil {
		return change{}, err
	}
	if q := next.QoS; q.Enabled && q.Interface != "" {
		if _, err := netutil.InterfaceIndex(q.Interface); errors.Is(err, netutil.ErrNoInterface) {
			return change{}, fmt.Errorf("qos.interface %q: %w", q.Interface, netutil.ErrNoInterface)
		}
	}
	return change{commit: func() { a.useWebhooks(next, secret) }}, nil
}

// prepareQoS puts next's QoS tree on the interface: the one step with an
// effect outside the agent that only the kernel can check, so it is the
// last step of a reload. A change the kernel refuses part way is undone
// by setQoS (the old tree is back) and refuses the reload; abort puts the
// old tree back should a step ever follow it.
func (a *Agent) prepareQoS(old, next *config.Config) (change, error) {
	if err := a.setQoS(next.NetQoS()); err != nil {
		return change{}, err
	}
	return change{abort: func() {
		if err := a.setQoS(old.NetQoS()); err != nil {
			a.log.Error("qos: the old tree could not be put back", "err", err)
		}
	}}, nil
}

// runOps follows the node's events and runs the webhook senders until ctx
// ends; the events queued by then (streams ended by the drain) still go
// to the sender, which then flushes (bounded by its FlushTimeout).
func (a *Agent) runOps(ctx context.Context) error {
	o := &a.ops
	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	o.mu.Lock()
	o.runCtx = hctx
	if o.hooks != nil {
		a.startHooks(o.hooks)
	}
	o.mu.Unlock()
	o.sub.Run(ctx, a.opsEvent)
	stop()
	o.hookWG.Wait()
	return nil
}

// startHooks runs h under o.runCtx; o.mu is held.
func (a *Agent) startHooks(h *hookRun) {
	o := &a.ops
	ctx, cancel := context.WithCancel(o.runCtx)
	h.cancel = cancel
	o.hookWG.Add(1)
	go func() {
		defer o.hookWG.Done()
		h.s.Run(ctx)
	}()
}

// closeOps stops the webhook sender and removes the QoS tree.
func (a *Agent) closeOps() error {
	o := &a.ops
	o.mu.Lock()
	h := o.hooks
	o.hooks = nil
	o.qosApplied = false
	o.qos.Enabled = false
	trees := make([]qosTree, 0, len(o.installed))
	for _, t := range o.installed {
		trees = append(trees, t)
	}
	o.mu.Unlock()
	if o.sub != nil {
		o.sub.Close()
	}
	if h != nil {
		h.s.Close()
	}
	var errs []error
	for _, t := range trees {
		what, err := removeRecorded(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("qos: remove: %w", err))
			continue
		}
		a.log.Info("qos cleanup", "interface", t.Interface, "result", what)
		a.forgetQoS(t.Interface)
	}
	return errors.Join(errs...)
}

// recordQoS notes a tree applied on ifname, in memory and in qos.json.
func (a *Agent) recordQoS(ifname string) error {
	o := &a.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.installed == nil {
		o.installed = map[string]qosTree{}
	}
	o.installed[ifname] = newQoSTree(ifname)
	if a.rtDir == "" {
		return nil
	}
	if err := writeQoSRecord(a.rtDir, o.installed); err != nil {
		return fmt.Errorf("qos: record the tree on %s in %s: %w", ifname, a.rtDir, err)
	}
	return nil
}

// forgetQoS drops ifname's tree from the record once it is removed.
func (a *Agent) forgetQoS(ifname string) {
	o := &a.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.installed, ifname)
	if a.rtDir == "" {
		return
	}
	if err := writeQoSRecord(a.rtDir, o.installed); err != nil {
		a.log.Warn("qos: could not update the record of installed trees", "dir", a.rtDir, "error", err)
	}
}

// setWebhooks reads cfg's webhook secret and puts its [webhooks] in force.
func (a *Agent) setWebhooks(cfg *config.Config) error {
	secret, err := webhookSecret(cfg)
	if err != nil {
		return err
	}
	a.useWebhooks(cfg, secret)
	return nil
}

// webhookSecret reads the HMAC key of cfg's [webhooks] (nil without one).
func webhookSecret(cfg *config.Config) ([]byte, error) {
	w := cfg.Webhooks
	if w.URL == "" || w.SecretFile == "" {
		return nil, nil
	}
	secret, err := config.LoadWebhookSecret(w.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhooks.secret_file: %w", err)
	}
	return secret, nil
}

// useWebhooks builds the sender for cfg's [webhooks] signed with secret,
// replacing the one in force when the config or the secret changed. The
// old sender flushes what it holds in the background.
func (a *Agent) useWebhooks(cfg *config.Config, secret []byte) {
	o := &a.ops
	w := cfg.Webhooks
	var events map[string]bool
	if len(w.Events) > 0 {
		events = map[string]bool{}
		for _, e := range w.Events {
			events[e] = true
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = events
	if o.hooks != nil && w.URL == o.hooksCfg.URL && bytes.Equal(secret, o.hookSecret) {
		o.hooksCfg = w
		return
	}
	old := o.hooks
	o.hooks, o.hooksCfg, o.hookSecret = nil, w, secret
	if w.URL != "" {
		o.hooks = &hookRun{s: webhook.New(webhook.Config{URL: w.URL, Secret: secret, Node: cfg.Node.ResolveName()}, a.log)}
		if o.runCtx != nil {
			a.startHooks(o.hooks)
		}
		a.log.Info("webhooks on", "url", w.URL, "signed", secret != nil, "events", eventsList(events))
	} else if old != nil {
		a.log.Info("webhooks off")
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
	var out []string
	for _, e := range config.WebhookEvents {
		if m[e] {
			out = append(out, e)
		}
	}
	return strings.Join(out, ",")
}

// notify sends a webhook event if webhooks are on and the event is among
// webhooks.events. It never blocks; data is marshalled to JSON at once.
// Event names: the Event* constants of package config.
func (a *Agent) notify(event string, data any) {
	o := &a.ops
	o.mu.Lock()
	h, events := o.hooks, o.events
	o.mu.Unlock()
	if h == nil || (events != nil && !events[event]) {
		return
	}
	h.s.Send(event, data)
}

// setQoS makes the backbone shaping what n says: applies (or reconciles)
// the tree, and removes it from an interface no longer shaped. Without
// CAP_NET_ADMIN it logs one warning per process and goes on. Any other
// failure (the kernel refusing an op part way, the old tree that cannot
// be removed) is undone before it returns: the tree in force before the
// call is what the interfaces carry, and the error says what failed.
func (a *Agent) setQoS(n netutil.QoSConfig) error {
	o := &a.ops
	o.mu.Lock()
	cur, curApplied := o.qos, o.qosApplied
	_, hadTree := o.installed[n.Interface] // before this change: a killed agent's, or the one in force
	o.mu.Unlock()
	if reflect.DeepEqual(cur, n) {
		return nil
	}
	undo := func(err error) error { return a.undoQoS(err, n, cur, curApplied, hadTree) }
	applied := false
	if n.Enabled {
		err := applyQoS(n)
		switch {
		case err == nil:
			applied = true
		case errors.Is(err, netutil.ErrNoNetAdmin):
			o.mu.Lock()
			warned := o.qosWarned
			o.qosWarned = true
			o.mu.Unlock()
			if !warned {
				a.log.Warn("qos: not applied, the agent lacks CAP_NET_ADMIN; running without traffic shaping (run as the packaged service, or grant CAP_NET_ADMIN)",
					"interface", n.Interface, "error", err)
			}
		default:
			if !strings.HasPrefix(err.Error(), "qos") { // netutil's errors name qos or the key
				err = fmt.Errorf("qos: %w", err)
			}
			return undo(err)
		}
	}
	moved := cur.Enabled && curApplied && (!n.Enabled || cur.Interface != n.Interface)
	if moved {
		if err := netutil.Remove(cur.Interface); err != nil {
			return undo(fmt.Errorf("qos: remove the tree from %s: %w", cur.Interface, err))
		}
	}
	if applied {
		if err := a.recordQoS(n.Interface); err != nil {
			return undo(err)
		}
		a.log.Info("qos applied", "interface", n.Interface, "rate", config.Bitrate(n.Rate).String(),
			"media_ports", n.MediaPorts, "control_ports", n.ControlPorts, "media_dscp", n.MediaDSCP)
	}
	if moved {
		a.forgetQoS(cur.Interface)
		a.log.Info("qos removed", "interface", cur.Interface)
	}
	o.mu.Lock()
	o.qos, o.qosApplied = n, applied
	o.mu.Unlock()
	return nil
}

// applyQoS is netutil.Apply, bounded.
func applyQoS(n netutil.QoSConfig) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return netutil.Apply(ctx, n)
}

// undoQoS puts back the tree in force (cur, when it was applied) after a
// failed change to n, removes what the change left on n's interface when
// it carried no tree of the agent's before (hadTree false), and returns
// err, or err with the reason undoing failed.
func (a *Agent) undoQoS(err error, n, cur netutil.QoSConfig, curApplied, hadTree bool) error {
	var errs []error
	if n.Enabled && (!cur.Enabled || !curApplied || cur.Interface != n.Interface) {
		if !hadTree {
			if _, rerr := netutil.RemoveTree(n.Interface); rerr != nil {
				errs = append(errs, fmt.Errorf("remove the partial tree from %s: %w", n.Interface, rerr))
			} else {
				a.forgetQoS(n.Interface)
			}
		}
	}
	if cur.Enabled && curApplied {
		if aerr := applyQoS(cur); aerr != nil {
			errs = append(errs, fmt.Errorf("put the old tree back on %s: %w", cur.Interface, aerr))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; undoing it failed too (run relaymesh cleanup, then reload): %w", err, errors.Join(errs...))
	}
	return fmt.Errorf("%w; the tree in force is unchanged", err)
}

// qosState returns the QoS config in force and whether it is installed.
func (a *Agent) qosState() (netutil.QoSConfig, bool) {
	o := &a.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.qos, o.qosApplied
}

// webhookStats returns the sender's counters, if webhooks are on.
func (a *Agent) webhookStats() (webhook.Stats, bool) {
	o := &a.ops
	o.mu.Lock()
	h := o.hooks
	o.mu.Unlock()
	if h == nil {
		return webhook.Stats{}, false
	}
	return h.s.Stats(), true
}

// metricsHandler serves GET /metrics; nil without a registry.
func (a *Agent) metricsHandler() http.Handler {
	reg := a.ops.reg
	if reg == nil {
		return nil
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
}

// qosInterface is the interface the agent shapes, if any: what `relaymesh
// cleanup` clears.
func qosInterface(cfg *config.Config) string { return cfg.QoS.Interface }
