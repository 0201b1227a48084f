package agent

// This file wires operations into the agent: Prometheus metrics
// (metrics.go, served by the API), webhooks for node events (webhook.Notifier), and QoS over
// netlink on the backbone interface (qos.Shaper).

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/metrics"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/qos"
	"github.com/relaymesh/relaymesh/webhook"
)

// opsState is the agent's ops part (Agent.ops).
type opsState struct {
	reg   *prometheus.Registry
	hooks *webhook.Notifier
	// qos keeps the record of installed trees in the runtime directory
	// for `relaymesh cleanup` (a.rtDir "" keeps none).
	qos *qos.Shaper
}

// newOps builds the metrics registry, the webhook notifier and the QoS
// tree.
func (a *Agent) newOps(cfg *config.Config) error {
	o := &a.ops
	o.reg = metrics.Registry(metricsSource{a}, a.events)
	hc, err := cfg.Notifier()
	if err != nil {
		return err
	}
	o.hooks = webhook.NewNotifier(a.events.Subscribe("ops", 0), hc, a.log, events.Log(a.log))
	if o.qos, err = qos.New(a.rtDir, a.log); err != nil {
		return err
	}
	a.add(o.hooks.Run, a.closeOps)
	return a.setQoS(cfg.NetQoS())
}

// prepareOps reads the webhook secret of next and checks its QoS
// interface; commit swaps the webhook sender (which cannot fail: the URL
// was validated with the config and the secret is read here).
func (a *Agent) prepareOps(_, next *config.Config) (change, error) {
	hc, err := next.Notifier()
	if err != nil {
		return change{}, err
	}
	if err := qos.Check(next.NetQoS()); err != nil {
		return change{}, err
	}
	return change{commit: func() { a.ops.hooks.Set(hc) }}, nil
}

// prepareQoS puts next's QoS tree on the interface, the last step of a
// reload (see qos.Shaper.Prepare).
func (a *Agent) prepareQoS(old, next *config.Config) (change, error) {
	abort, err := a.ops.qos.Prepare(old.NetQoS(), next.NetQoS())
	if err != nil {
		return change{}, err
	}
	return change{abort: abort}, nil
}

// closeOps stops the webhook sender and removes the QoS trees.
func (a *Agent) closeOps() error {
	o := &a.ops
	if o.hooks != nil {
		o.hooks.Close()
	}
	if o.qos == nil {
		return nil
	}
	return o.qos.Close()
}

// setQoS makes the backbone shaping what n says (qos.Shaper.Set).
func (a *Agent) setQoS(n netutil.QoSConfig) error {
	if a.ops.qos == nil {
		q, err := qos.New(a.rtDir, a.log)
		if err != nil {
			return err
		}
		a.ops.qos = q
	}
	return a.ops.qos.Set(n)
}
