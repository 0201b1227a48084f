package gossip

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Timings tune failure detection and dissemination. The defaults declare a
// dead member within a few seconds and spread a directory change in well
// under a second on a small cluster.
type Timings struct {
	ProbeInterval    time.Duration // how often each node probes one random peer
	ProbeTimeout     time.Duration // wait for a direct ack; keep above the worst WAN RTT
	SuspicionMult    int           // suspicion timeout = SuspicionMult * max(1, log10(n)) * ProbeInterval
	SuspicionMaxMult int           // upper bound multiplier while waiting for confirmations
	GossipInterval   time.Duration // how often queued broadcasts are sent
	GossipNodes      int           // peers gossiped to per interval
	RetransmitMult   int           // each broadcast is sent RetransmitMult * log(n+1) times
	PushPullInterval time.Duration // full state sync (anti-entropy) interval
	TCPTimeout       time.Duration // push/pull and join connection timeout
	MetaMinInterval  time.Duration // least time between two metadata updates (load changes)
	RejoinInterval   time.Duration // while alone, retry the seeds this often
	TombstoneTTL     time.Duration // how long unpublished streams are remembered
}

// DefaultTimings returns the tuned defaults.
func DefaultTimings() Timings {
	return Timings{
		ProbeInterval:    time.Second,
		ProbeTimeout:     700 * time.Millisecond,
		SuspicionMult:    2,
		SuspicionMaxMult: 3,
		GossipInterval:   100 * time.Millisecond,
		GossipNodes:      3,
		RetransmitMult:   4,
		PushPullInterval: 15 * time.Second,
		TCPTimeout:       5 * time.Second,
		MetaMinInterval:  time.Second,
		RejoinInterval:   5 * time.Second,
		TombstoneTTL:     10 * time.Minute,
	}
}

// Config configures a Cluster.
type Config struct {
	NodeName      string // unique in the cluster; also NodeMeta.Name
	BindAddr      string // gossip listen address, e.g. "0.0.0.0"
	BindPort      int    // gossip port (TCP and UDP); 0 picks a free one
	AdvertiseAddr string // address peers use to reach us; "" = derived from BindAddr
	AdvertisePort int    // 0 = the bound port
	Seeds         []string
	KeyFile       string // base64 AES key; "" disables gossip encryption (logged as a warning)
	Meta          NodeMeta
	Timings       Timings

	// OnEvent, if set, receives member events one at a time, in order, from
	// a goroutine of the Cluster. It may block briefly; events queue meanwhile.
	OnEvent func(Event)
}

// DefaultConfig returns a config with the default timings and gossip port.
func DefaultConfig() Config {
	return Config{BindAddr: "0.0.0.0", BindPort: 7946, Timings: DefaultTimings()}
}

// Validate reports every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node_name: must not be empty"))
	} else if len(c.NodeName) > maxNodeName {
		errs = append(errs, fmt.Errorf("node_name: %d bytes, at most %d", len(c.NodeName), maxNodeName))
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("bind_addr: %q is not an IP address", c.BindAddr))
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		errs = append(errs, fmt.Errorf("advertise_addr: %q is not an IP address", c.AdvertiseAddr))
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		errs = append(errs, fmt.Errorf("bind_port: %d is not a port", c.BindPort))
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		errs = append(errs, fmt.Errorf("advertise_port: %d is not a port", c.AdvertisePort))
	}
	if err := c.Meta.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("meta: %w", err))
	}
	t := c.Timings
	if t.ProbeInterval <= 0 || t.ProbeTimeout <= 0 || t.ProbeTimeout >= t.ProbeInterval {
		errs = append(errs, fmt.Errorf("timings: probe_timeout (%v) must be positive and below probe_interval (%v)", t.ProbeTimeout, t.ProbeInterval))
	}
	if t.SuspicionMult < 1 || t.SuspicionMaxMult < 1 {
		errs = append(errs, errors.New("timings: suspicion_mult and suspicion_max_mult must be at least 1"))
	}
	if t.GossipInterval <= 0 || t.GossipNodes < 1 || t.RetransmitMult < 1 {
		errs = append(errs, errors.New("timings: gossip_interval, gossip_nodes and retransmit_mult must be positive"))
	}
	if t.PushPullInterval <= 0 || t.TCPTimeout <= 0 || t.MetaMinInterval <= 0 || t.RejoinInterval <= 0 || t.TombstoneTTL <= 0 {
		errs = append(errs, errors.New("timings: push_pull_interval, tcp_timeout, meta_min_interval, rejoin_interval and tombstone_ttl must be positive"))
	}
	return errors.Join(errs...)
}
