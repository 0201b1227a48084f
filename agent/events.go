package agent

// This file wires the node's event bus (events/) into the agent: the hub,
// gossip (gossip.ToBus), flows and the edge uplinks publish on it; the
// ops part (logs through events.Log, and webhooks through webhook.Notifier), the roles and
// the metrics (metrics.NewEvents) follow it.

import (
	"context"

	"github.com/relaymesh/relaymesh/events"
)

// subscribe runs fn on every event, in order, on a goroutine the agent's
// Run owns; the subscription is taken now, so nothing published before
// Run is missed.
func (a *Agent) subscribe(name string, fn func(events.Record)) {
	sub := a.events.Subscribe(name, 0)
	a.add(func(ctx context.Context) error { return sub.Run(ctx, fn) }, sub.Close)
}
