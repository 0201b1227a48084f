package gossip

// This file puts member events on the node's event bus (package events),
// where webhooks, metrics and the roles follow them.

import (
	"context"
	"log/slog"

	"github.com/relaymesh/relaymesh/events"
)

// Publisher is where ToBus puts member events (an *events.Bus).
type Publisher interface {
	Publish(events.Event) uint64
}

// ToBus returns a Config.OnEvent that logs each member change (updates,
// the load changes of every few seconds, at debug level) and publishes
// joins, leaves and failures on pub as events.MemberJoined, MemberLeft
// and MemberFailed, in the order the cluster reports them.
func ToBus(pub Publisher, log *slog.Logger) func(Event) {
	return func(e Event) {
		level := slog.LevelInfo
		if e.Type == EventUpdate {
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "cluster member "+e.Type.String(), "member", e.Member.Name, "role", string(e.Member.Meta.Role),
			"site", e.Member.Meta.Site, "streams_dropped", len(e.Streams))
		if ev := BusEvent(e); ev != nil {
			pub.Publish(ev)
		}
	}
}

// BusEvent is e as a bus event, nil for a change the bus does not carry
// (metadata updates).
func BusEvent(e Event) events.Event {
	m := events.Member{Name: e.Member.Name, Role: string(e.Member.Meta.Role), Site: e.Member.Meta.Site,
		Region: e.Member.Meta.Region, Addr: e.Member.Addr.String()}
	switch e.Type {
	case EventJoin:
		return events.MemberJoined{Member: m}
	case EventLeave:
		return events.MemberLeft{Member: m, Streams: e.Streams}
	case EventFailed:
		return events.MemberFailed{Member: m, Streams: e.Streams}
	}
	return nil
}
