package gossip

import (
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
)

// State is a member's health as this node sees it.
type State int

// Member states.
const (
	StateAlive State = iota
	// StateSuspect: memberlist still lists the member as alive, but this
	// node's direct pings to it have gone unanswered for more than two probe
	// rounds. (memberlist's own suspect flag cannot be read without a data
	// race, so this is this node's view.)
	StateSuspect
	StateDead // declared failed by the cluster
	StateLeft // left gracefully
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

// MarshalText makes State print as its name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Member is one node of the cluster as seen from this node.
type Member struct {
	Name     string
	Addr     netip.AddrPort // gossip address
	Meta     NodeMeta
	MetaErr  error // set when the peer's metadata could not be decoded
	State    State
	Local    bool          // this node
	RTT      time.Duration // best estimate (coordinates, else last ping)
	RTTKnown bool
	// Unreachable: this node's data path could not connect to it since
	// its last ping answer (MarkUnreachable).
	Unreachable bool
	MeasuredRTT time.Duration // last direct ping round trip
	MeasuredAt  time.Time     // when MeasuredRTT was taken; zero if never
	Updated     time.Time     // last state or metadata change
}

// Healthy reports whether the member is alive (not suspect, dead or left).
func (m Member) Healthy() bool { return m.State == StateAlive }

// EventType says what happened to a member.
type EventType int

// Event types.
const (
	EventJoin   EventType = iota // a member joined (or came back)
	EventUpdate                  // its metadata changed (load, addresses)
	EventLeave                   // it left gracefully
	EventFailed                  // it was declared dead
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	case EventLeave:
		return "leave"
	case EventFailed:
		return "failed"
	}
	return "unknown"
}

// Event is a change of membership. Streams lists the streams the member
// hosted that were dropped from the directory (EventLeave, EventFailed).
type Event struct {
	Type    EventType
	Member  Member
	Streams []string
	At      time.Time
}

// memberRec is the table row behind a Member; guarded by Cluster.mu.
type memberRec struct {
	name     string
	addr     netip.AddrPort
	meta     NodeMeta
	metaErr  error
	state    State // alive, dead or left; suspect is derived
	leaving  bool  // it announced a graceful leave
	updated  time.Time
	since    time.Time // when it last became alive
	lastAck  time.Time
	measured time.Duration
	coord    *coordinate.Coordinate
}

func addrPort(n *memberlist.Node) netip.AddrPort {
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}
