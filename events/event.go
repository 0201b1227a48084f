// Package events is relaymesh's one ordered, typed event stream: stream
// published / reconnected / ended, flow switched, member joined / left /
// failed, link moved. The component where a state changes publishes the
// event there (the hub under its lock, gossip's event goroutine, a flow's
// runner), so every subscriber sees one sequence, in the order the changes
// happened. Webhooks, metrics and the roles subscribe.
//
// # Use
//
//	bus := events.New(log)
//	sub := bus.Subscribe("webhooks", 1024)
//	go sub.Run(ctx, func(r events.Record) { ... })   // owned by the caller
//	bus.Publish(events.StreamPublished{Stream: "live/cam1"})
//	...
//	sub.Close(); bus.Close()
//
// Publish never blocks on a subscriber: each has a bounded queue, and a
// subscriber that falls behind loses the events that do not fit. The loss
// is never silent: it is counted (Stats), logged once per gap, and the
// subscriber receives a [Missed] record in the place of the events it lost,
// so it knows its view has a hole and can resynchronise.
//
// The package imports nothing of relaymesh, so the data plane (media/) can
// publish into it without knowing the control plane.
package events

import "time"

// Kind names an event type. The names are stable: logs and the metric
// relaymesh_events_total use them.
type Kind string

// The event kinds.
const (
	KindStreamPublished   Kind = "stream.published"
	KindStreamReconnected Kind = "stream.reconnected"
	KindStreamEnded       Kind = "stream.ended"
	KindFlowSwitched      Kind = "flow.switched"
	KindMemberJoined      Kind = "member.joined"
	KindMemberLeft        Kind = "member.left"
	KindMemberFailed      Kind = "member.failed"
	KindLinkMoved         Kind = "link.moved"
	KindMissed            Kind = "events.missed"
)

// Kinds lists every kind a publisher may send (not KindMissed, which the
// bus makes itself).
var Kinds = []Kind{KindStreamPublished, KindStreamReconnected, KindStreamEnded, KindFlowSwitched,
	KindMemberJoined, KindMemberLeft, KindMemberFailed, KindLinkMoved}

// Event is one of the types below.
type Event interface {
	Kind() Kind
}

// Record is an event as a subscriber receives it.
type Record struct {
	Seq   uint64    // one sequence for the whole bus, starting at 1
	Time  time.Time // when it was published
	Event Event
}

// StreamPublished: a stream went live on this node (its first publisher).
// It comes once per stream life; a publisher that returns within the
// reconnect grace is a StreamReconnected.
type StreamPublished struct {
	Stream   string // app/name
	Protocol string // the publisher's: rtmp, srt, pull, ...
	Remote   string
}

// StreamReconnected: a publisher attached to a stream that was still live:
// back within the reconnect grace (readers stayed), or a takeover of a
// live publisher (Takeover).
type StreamReconnected struct {
	Stream   string
	Protocol string
	Remote   string
	Takeover bool
}

// StreamEnded: the stream ended for good (the grace ran out without a
// publisher, or the node shuts down). Once per StreamPublished.
type StreamEnded struct {
	Stream string
	Reason string // "publisher gone", or why the hub ended it
}

// FlowSwitched: a flow moved its output from one source to the other.
type FlowSwitched struct {
	Flow   string // flow id
	Stream string // the flow's output stream
	From   string // source names ("primary", "backup" unless named)
	To     string
	// Failover is true for primary->backup, false for the return to the
	// primary.
	Failover bool
	// Reason: "silence" (the active source sent nothing for the failover
	// window), "primary back" (it delivered again for the hold time), or
	// "health: " and the rule the active source broke while it delivered
	// ("health: framerate", "health: frozen").
	Reason string
	GapMS  int64 // between the last packet of From and the first of To
}

// Member is a cluster member as events describe it.
type Member struct {
	Name   string
	Role   string
	Site   string
	Region string
	Addr   string // gossip address
}

// MemberJoined: a node joined the cluster (or came back).
type MemberJoined struct{ Member Member }

// MemberLeft: a node left the cluster on purpose (it said so first).
type MemberLeft struct {
	Member  Member
	Streams []string // directory entries it owned, now dropped
}

// MemberFailed: gossip declared a node dead without a leave.
type MemberFailed struct {
	Member  Member
	Streams []string
}

// LinkMoved: an edge uplink (a backbone link carrying Stream) moved from
// one center to another.
type LinkMoved struct {
	Stream string
	From   string // center node names
	To     string
	Reason string // why the old link ended
	// FromRTT and ToRTT are the edge's RTTs to the two centers when the
	// move was a re-placement onto a better center (else 0).
	FromRTT, ToRTT time.Duration
}

// Missed stands in a subscriber's queue for N events it lost because it
// fell behind: those with sequence numbers First..Last.
type Missed struct {
	N           uint64
	First, Last uint64
}

func (StreamPublished) Kind() Kind   { return KindStreamPublished }
func (StreamReconnected) Kind() Kind { return KindStreamReconnected }
func (StreamEnded) Kind() Kind       { return KindStreamEnded }
func (FlowSwitched) Kind() Kind      { return KindFlowSwitched }
func (MemberJoined) Kind() Kind      { return KindMemberJoined }
func (MemberLeft) Kind() Kind        { return KindMemberLeft }
func (MemberFailed) Kind() Kind      { return KindMemberFailed }
func (LinkMoved) Kind() Kind         { return KindLinkMoved }
func (Missed) Kind() Kind            { return KindMissed }
