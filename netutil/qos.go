// Package netutil holds the agent's host networking helpers: socket tuning
// (DSCP marks), CIDR allowlists, and backbone QoS with Linux traffic control.
//
// # Backbone QoS
//
// The [qos] section of the config becomes a [QoSConfig]. When it is enabled
// the agent calls [Apply] at start and on reload, [ClassStats] at metrics
// scrape time, and [Remove] on shutdown (`relaymesh cleanup` runs it too):
//
//	if err := netutil.Apply(ctx, cfg.QoS); errors.Is(err, netutil.ErrNoNetAdmin) {
//		logger.Warn("qos: not applied, the agent lacks CAP_NET_ADMIN", "error", err)
//	} else if err != nil {
//		return err
//	}
//	defer netutil.Remove(cfg.QoS.Interface)
//
// Apply installs, over netlink, this tree on the egress of the backbone
// interface (the handle major 0x524d, "RM", marks what the agent owns):
//
//	qdisc htb 524d: root, default class 524d:30
//	└─ class 524d:1   "link"     rate = ceil = qos.rate
//	   ├─ class 524d:10 "media"   prio 0, rate = media share, ceil = link
//	   ├─ class 524d:20 "control" prio 1, rate = qos.control_rate, ceil = link
//	   └─ class 524d:30 "bulk"    prio 2, rate = the rest, ceil = link
//
// Each class has a leaf qdisc: fq_codel when the kernel has it, else pfifo
// (probed once per process by trying fq_codel for real). u32 filters on the
// root send to "media" packets whose DSCP is qos.media_dscp (AF41 = 34 by
// default) and UDP/TCP packets from or to qos.media_ports, and to "control"
// those from or to qos.control_ports, for IPv4 and IPv6 (ports are matched
// on IPv4 headers without options and IPv6 headers without extension
// headers). Everything else is "bulk". The media class gets its guaranteed
// rate first and may borrow up to the link rate when others are idle.
//
// [Plan] is the pure part: it turns a config into the ordered list of tc
// operations ([Op]), printed like tc commands. Apply executes it with
// replace semantics, so it is idempotent and reconciles a changed config in
// place. Apply refuses an interface whose root qdisc was set up by someone
// else ([ErrForeignQdisc]); Remove deletes only the agent's own root qdisc.
// Without CAP_NET_ADMIN both return an error wrapping [ErrNoNetAdmin].
//
// Mark the agent's backbone sockets with [SetDSCP] (or [DSCPControl] in a
// net.ListenConfig / net.Dialer) so that the DSCP filter sees them.
package netutil

import (
	"errors"
	"fmt"
	"strings"
)

// DSCPAF41 is the default DSCP of backbone media: assured forwarding class 4,
// low drop precedence, as used for interactive video.
const DSCPAF41 = 34

// QoSConfig is the [qos] section of the agent config. Rates are in bits/s.
type QoSConfig struct {
	// Enabled turns the shaping on. When false, Apply removes any tree it
	// installed earlier on Interface and Validate checks nothing.
	Enabled bool `toml:"enabled"`
	// Interface is the backbone network interface, e.g. "eth0".
	Interface string `toml:"interface"`
	// Rate is the egress rate of the link in bits/s. Set it slightly below
	// the real uplink rate so that the queue builds here, not upstream.
	Rate uint64 `toml:"rate"`
	// MediaShare is the fraction of Rate guaranteed to backbone media,
	// 0 < share < 1. Ignored when MediaRate is set.
	MediaShare float64 `toml:"media_share"`
	// MediaRate, when not 0, is the guaranteed media rate in bits/s and takes
	// precedence over MediaShare.
	MediaRate uint64 `toml:"media_rate"`
	// ControlRate is the rate guaranteed to control traffic (gossip, API) in
	// bits/s. 0 means 5% of Rate, at least 64 kbit/s.
	ControlRate uint64 `toml:"control_rate"`
	// MediaDSCP is the DSCP (1..63) that marks backbone media.
	MediaDSCP int `toml:"media_dscp"`
	// MediaPorts are the backbone SRT ports (matched as source or
	// destination, UDP and TCP).
	MediaPorts []uint16 `toml:"media_ports"`
	// ControlPorts are the gossip and API ports.
	ControlPorts []uint16 `toml:"control_ports"`
}

// DefaultQoSConfig returns the defaults: disabled, half the link for media,
// media marked AF41.
func DefaultQoSConfig() QoSConfig {
	return QoSConfig{
		MediaShare: 0.5,
		MediaDSCP:  DSCPAF41,
	}
}

// Minimum rates accepted by Validate.
const (
	minLinkRate  = 1_000_000          // 1 Mbit/s
	minClassRate = 64_000             // 64 kbit/s
	maxLinkRate  = 10_000_000_000_000 // 10 Tbit/s, far below uint64 overflow
)

// Validate reports every problem of an enabled config, each naming its key
// (qos.rate, qos.media_ports[1], ...), joined with errors.Join.
func (c QoSConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("qos.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.Interface == "":
		bad("interface", "missing: name the backbone interface, e.g. \"eth0\"")
	case len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/: \t\n") || c.Interface == "." || c.Interface == "..":
		bad("interface", "%q is not a valid interface name", c.Interface)
	}
	if c.Rate < minLinkRate {
		bad("rate", "%d bit/s is below the minimum of %d bit/s (1 Mbit/s); set the backbone uplink rate", c.Rate, minLinkRate)
	} else if c.Rate > maxLinkRate {
		bad("rate", "%d bit/s is above the maximum of %d bit/s (10 Tbit/s); the value is in bit/s", c.Rate, uint64(maxLinkRate))
	}
	if c.MediaRate == 0 && !(c.MediaShare > 0 && c.MediaShare < 1) {
		bad("media_share", "%v is not a fraction between 0 and 1 (exclusive)", c.MediaShare)
	}
	if c.MediaDSCP < 1 || c.MediaDSCP > 63 {
		bad("media_dscp", "%d is not a DSCP between 1 and 63 (AF41 = 34)", c.MediaDSCP)
	}
	if c.Rate >= minLinkRate && c.Rate <= maxLinkRate {
		media, control, bulk := c.classRates()
		if c.MediaRate != 0 && c.MediaRate >= c.Rate {
			bad("media_rate", "%d bit/s is not below qos.rate (%d bit/s)", c.MediaRate, c.Rate)
		} else if c.ControlRate >= c.Rate {
			bad("control_rate", "%d bit/s is not below qos.rate (%d bit/s)", c.ControlRate, c.Rate)
		} else if media < minClassRate {
			bad(c.mediaKey(), "gives media %d bit/s, below the minimum of %d bit/s", media, minClassRate)
		} else if bulk < minClassRate {
			bad(c.mediaKey(), "media (%d bit/s) plus control (%d bit/s) leave %d bit/s for bulk traffic, below the minimum of %d bit/s; lower them or raise qos.rate",
				media, control, bulk, minClassRate)
		}
	}
	seen := map[uint16]string{}
	checkPorts := func(key string, ports []uint16) {
		for i, p := range ports {
			k := fmt.Sprintf("%s[%d]", key, i)
			if p == 0 {
				bad(k, "port 0 is not a port")
				continue
			}
			if prev, ok := seen[p]; ok {
				bad(k, "port %d is already listed as qos.%s", p, prev)
				continue
			}
			seen[p] = k
		}
	}
	checkPorts("media_ports", c.MediaPorts)
	checkPorts("control_ports", c.ControlPorts)
	return errors.Join(errs...)
}

func (c QoSConfig) mediaKey() string {
	if c.MediaRate != 0 {
		return "media_rate"
	}
	return "media_share"
}

// classRates returns the guaranteed rates in bits/s of the media, control
// and bulk classes. Bulk gets what is left (0 if nothing is).
func (c QoSConfig) classRates() (media, control, bulk uint64) {
	media = c.MediaRate
	if media == 0 && c.MediaShare > 0 && c.MediaShare < 1 {
		media = uint64(float64(c.Rate) * c.MediaShare)
	}
	control = c.ControlRate
	if control == 0 {
		control = max(c.Rate/20, minClassRate)
	}
	if media+control < c.Rate {
		bulk = c.Rate - media - control
	}
	return media, control, bulk
}

// Capabilities says what the running kernel offers to the planner.
type Capabilities struct {
	// FQCodel is true when the fq_codel qdisc can be created.
	FQCodel bool
}

// Errors callers test with errors.Is.
var (
	// ErrNoNetAdmin means the kernel refused a tc change with EPERM: the
	// agent lacks CAP_NET_ADMIN. Log one warning and run without QoS.
	ErrNoNetAdmin = errors.New("no permission to change traffic control (needs CAP_NET_ADMIN)")
	// ErrForeignQdisc means the interface has a root qdisc that the agent
	// did not create; Apply leaves it alone.
	ErrForeignQdisc = errors.New("interface has a root qdisc not created by relaymesh")
	// ErrNoInterface means the interface named by qos.interface does not
	// exist in the namespace.
	ErrNoInterface = errors.New("no such network interface here (ip -br link lists them)")
)

// Removal is what RemoveTree found on an interface.
type Removal int

const (
	// Removed: the agent's root qdisc was there and is deleted.
	Removed Removal = iota
	// NoTree: the interface exists but carries no tree of the agent's.
	NoTree
	// NoInterface: the interface does not exist (any tree went with it).
	NoInterface
)

// QoSRootHandle is the handle of the root qdisc Apply installs, as tc
// prints it ("524d:").
func QoSRootHandle() string { return fmtHandle(rootHandle) }

// ClassStat is the counters of one QoS class, read at scrape time.
type ClassStat struct {
	Class      string // "media", "control" or "bulk"
	Bytes      uint64 // bytes sent
	Packets    uint64 // packets sent
	Drops      uint64 // packets dropped
	Overlimits uint64 // times the class was over its rate (throttled)
}
