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
	// pings are the last direct ping round trips, newest at
	// pings[(npings-1)%len], for the RTT filter (pathRTT)
	pings  [rttFilterSamples]rttSample
	npings int
	coord  *coordinate.Coordinate
}

// rttSample is one direct ping round trip and when it came.
type rttSample struct {
	rtt time.Duration
	at  time.Time
}

// The RTT a center is ranked by is the least of the last rttFilterSamples
// pings of the last rttFilterWindow: a ping's round trip is the path's
// plus whatever both ends' schedulers and queues added, never less, and
// on a loaded host that was up to 90-110 ms on a 6 ms path (esin to sin
// in TestClusterReplaceSettings and TestCluster, load 20-60 on 2 cores).
// Taken one sample at a time (a member is pinged every few seconds),
// one such ping made sin look worse than tyo (74 ms) for longer than
// re-placement's hold and moved a stream to the far center. A path that
// really got slower is ranked by it once the faster pings are older than
// the window. Links are still sized by the latest ping when it is
// larger (linkRTT): an SRT latency too small loses packets.
const (
	rttFilterSamples = 5
	rttFilterWindow  = 15 * time.Second
)

// addPing records a direct ping round trip.
func (r *memberRec) addPing(rtt time.Duration, at time.Time) {
	r.measured, r.lastAck = rtt, at
	r.pings[r.npings%rttFilterSamples] = rttSample{rtt: rtt, at: at}
	r.npings++
}

// pathRTT is the least ping round trip of the last rttFilterWindow
// before now (the latest ping's when it is older).
func (r *memberRec) pathRTT(now time.Time) time.Duration {
	best := r.measured
	for i := range min(r.npings, rttFilterSamples) {
		s := r.pings[i]
		if now.Sub(s.at) <= rttFilterWindow && s.rtt < best {
			best = s.rtt
		}
	}
	return best
}

func addrPort(n *memberlist.Node) netip.AddrPort {
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}
