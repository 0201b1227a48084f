package metrics

import (
	"time"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/webrtc"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/webhook"
)

// Source is the node the collector reads at every scrape; the agent
// implements it. Each method answers what is in force now (a reload may
// swap a listener; the cluster parts may be built after the collector)
// and must be safe to call from the scrape's goroutine.
type Source interface {
	Node() Node
	Hub() Hub
	Listeners() Listeners
	// QoS is the [qos] config in force and whether its tree is installed.
	QoS() (netutil.QoSConfig, bool)
	// Webhooks is the sender's counters; false when webhooks are off.
	Webhooks() (webhook.Stats, bool)
	Cluster() Cluster
	// Flows is the flow manager; nil when the node has none.
	Flows() Flows
	// WebRTC is the WHEP/WHIP server; nil when [webrtc] is off.
	WebRTC() WebRTC
}

// Node is what the node says about itself.
type Node struct {
	Version, Role, Name string
	Started             time.Time
}

// Hub is the data plane's stream table (*media.Hub).
type Hub interface {
	Streams() []*media.Stream
	PublisherCount() int
}

// Listeners are the listeners in force.
type Listeners struct {
	// Refused counts refused connections per listener that is on
	// ("rtmp", "srt").
	Refused map[string]uint64
	// SRT is the SRT listener (*srt.Server), nil when it is off.
	SRT SRTConns
	// SRTMemory is the node's SRT receive memory (*srt.Budget), nil when
	// there is none.
	SRTMemory SRTMemory
}

// SRTMemory is the receive memory SRT connections hold and its limit.
type SRTMemory interface {
	Reserved() int64
	Limit() int64
}

// SRTConns lists the SRT listener's open connections.
type SRTConns interface{ Stats() []srt.ConnStats }

// Cluster is the cluster's parts on this node; a nil field is not there.
type Cluster struct {
	Members Members // gossip (*gossip.Cluster); nil without a cluster
	Uplinks Uplinks // the edge role's backbone pushes (*edge.Uplinks)
	Center  Center  // the center role's pulls and dual-path merges (*center.Center)
}

// Members is the gossip membership as this node sees it.
type Members interface{ Members() []gossip.Member }

// Uplinks are the edge role's backbone links to centers.
type Uplinks interface {
	Streams() []edge.Status
	DualStreams() []edge.DualStatus // redundancy = "dual": two legs each
	Replacements() uint64           // make-before-break moves to a better center
	HealthMoves() uint64            // moves away from an unhealthy link
}

// Center is the center role's backbone pulls from other nodes and its
// dual-path merges.
type Center interface {
	Pulls() []center.PullStatus
	Duals() []center.DualStatus
}

// Flows counts the flows' source switches by reason.
type Flows interface{ SwitchCounts() map[string]uint64 }

// WebRTC is the WHEP/WHIP server's counters (*webrtc.Server).
type WebRTC interface{ IngestDrops() []webrtc.IngestDrop }

// EventStats is the event bus's counters (*events.Bus).
type EventStats interface{ Stats() events.Stats }
