package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/events"
)

var (
	mEvents = prometheus.NewDesc("relaymesh_events_total",
		"Node events published on the event bus, by kind (stream.published, member.joined, flow.switched, ...).", []string{"kind"}, nil)
	mEventsMissed = prometheus.NewDesc("relaymesh_event_subscriber_missed_total",
		"Events a subscriber of the node's event bus lost because it fell behind.", []string{"subscriber"}, nil)
	mEventsQueued = prometheus.NewDesc("relaymesh_event_subscriber_queued",
		"Events waiting in a subscriber's queue.", []string{"subscriber"}, nil)
)

// Events reads the event bus's counters at scrape time.
type Events struct{ bus EventStats }

// NewEvents returns the collector of bus's counters.
func NewEvents(bus EventStats) *Events { return &Events{bus: bus} }

// Describe sends the bus's descriptors.
func (c *Events) Describe(ch chan<- *prometheus.Desc) {
	ch <- mEvents
	ch <- mEventsMissed
	ch <- mEventsQueued
}

// Collect reads the bus: every kind, even those never published, and
// every subscriber.
func (c *Events) Collect(ch chan<- prometheus.Metric) {
	e := emit(ch)
	st := c.bus.Stats()
	for _, k := range events.Kinds {
		e.counter(mEvents, float64(st.Published[k]), string(k))
	}
	for _, s := range st.Subscribers {
		e.counter(mEventsMissed, float64(s.Missed), s.Name)
		e.gauge(mEventsQueued, float64(s.Queued), s.Name)
	}
}
