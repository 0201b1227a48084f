package agent

// This file wires the node's event bus (events/) into the agent: the hub,
// gossip (clusterEvent), flows and the edge uplinks publish on it; the
// ops part (logs and webhooks), the roles and the metrics follow it.

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
)

// subscribe runs fn on every event, in order, on a goroutine the agent's
// Run owns; the subscription is taken now, so nothing published before
// Run is missed.
func (a *Agent) subscribe(name string, fn func(events.Record)) {
	sub := a.events.Subscribe(name, 0)
	a.add(func(ctx context.Context) error { return sub.Run(ctx, fn) }, sub.Close)
}

// opsEvent logs a node event and sends its webhook.
func (a *Agent) opsEvent(r events.Record) {
	switch e := r.Event.(type) {
	case events.StreamPublished:
		a.log.Info("stream published", "stream", e.Stream, "protocol", e.Protocol, "remote", e.Remote)
		a.notify(config.EventStreamPublished, map[string]any{"stream": e.Stream, "protocol": e.Protocol})
	case events.StreamReconnected:
		a.log.Info("stream publisher reconnected", "stream", e.Stream, "protocol", e.Protocol, "remote", e.Remote, "takeover", e.Takeover)
		a.notify(config.EventStreamReconnected, map[string]any{"stream": e.Stream, "protocol": e.Protocol, "takeover": e.Takeover})
	case events.StreamEnded:
		a.log.Info("stream ended", "stream", e.Stream, "reason", e.Reason)
		a.notify(config.EventStreamUnpublished, map[string]any{"stream": e.Stream, "reason": e.Reason})
	case events.FlowSwitched:
		dir := "backup->primary"
		if e.Failover {
			dir = "primary->backup"
		}
		a.notify(config.EventStreamFailover, map[string]any{"flow": e.Flow, "stream": e.Stream, "from": e.From, "to": e.To,
			"direction": dir, "reason": e.Reason, "gap_ms": e.GapMS})
	case events.MemberJoined:
		a.notify(config.EventMemberJoin, memberData(e.Member))
	case events.MemberLeft:
		a.notify(config.EventMemberLeave, memberLeave(e.Member, "left", e.Streams))
	case events.MemberFailed:
		a.notify(config.EventMemberLeave, memberLeave(e.Member, "failed", e.Streams))
	case events.Missed:
		a.log.Warn("webhooks missed node events: the ops subscriber fell behind", "missed", e.N, "first_seq", e.First, "last_seq", e.Last)
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

var (
	mEvents = prometheus.NewDesc("relaymesh_events_total",
		"Node events published on the event bus, by kind (stream.published, member.joined, flow.switched, ...).", []string{"kind"}, nil)
	mEventsMissed = prometheus.NewDesc("relaymesh_event_subscriber_missed_total",
		"Events a subscriber of the node's event bus lost because it fell behind.", []string{"subscriber"}, nil)
	mEventsQueued = prometheus.NewDesc("relaymesh_event_subscriber_queued",
		"Events waiting in a subscriber's queue.", []string{"subscriber"}, nil)
)

// eventsCollector reads the bus's counters at scrape time.
type eventsCollector struct{ bus *events.Bus }

func (c eventsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mEvents
	ch <- mEventsMissed
	ch <- mEventsQueued
}

func (c eventsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.bus.Stats()
	for _, k := range events.Kinds {
		ch <- prometheus.MustNewConstMetric(mEvents, prometheus.CounterValue, float64(st.Published[k]), string(k))
	}
	for _, s := range st.Subscribers {
		ch <- prometheus.MustNewConstMetric(mEventsMissed, prometheus.CounterValue, float64(s.Missed), s.Name)
		ch <- prometheus.MustNewConstMetric(mEventsQueued, prometheus.GaugeValue, float64(s.Queued), s.Name)
	}
}
