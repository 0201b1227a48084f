package metrics

import (
	"time"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
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
}

// SRTConns lists the SRT listener's open connections.
type SRTConns interface{ Stats() []srt.ConnStats }

// Cluster is the cluster's parts on this node; a nil field is not there.
type Cluster struct {
	Members Members // gossip (*gossip.Cluster); nil without a cluster
	Uplinks Uplinks // the edge role's backbone pushes (*edge.Uplinks)
	Pulls   Pulls   // the center role's on-demand pulls (*center.Center)
}

// Members is the gossip membership as this node sees it.
type Members interface{ Members() []gossip.Member }

// Uplinks are the edge role's backbone links to centers.
type Uplinks interface{ Streams() []edge.Status }

// Pulls are the center role's backbone pulls from other nodes.
type Pulls interface{ Pulls() []center.PullStatus }

// EventStats is the event bus's counters (*events.Bus).
type EventStats interface{ Stats() events.Stats }
