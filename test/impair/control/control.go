// Package control is the wire format between test/netlab and the impair
// tool: newline-delimited JSON requests on the tool's stdin and one JSON
// reply line per request on its stdout. The same Config, as a JSON file,
// is what `impair -config` reads at start and on SIGHUP.
package control

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("80ms").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Link is the impairment of one direction, packets from Src to Dst.
type Link struct {
	Src netip.Addr `json:"src"`
	Dst netip.Addr `json:"dst"`
	// Delay is the constant one-way delay.
	Delay Duration `json:"delay,omitempty"`
	// Jitter adds a uniform random delay in [0, Jitter]. Packet order
	// within the direction is kept anyway.
	Jitter Duration `json:"jitter,omitempty"`
	// Loss is the probability in [0, 1] that a packet is dropped.
	Loss float64 `json:"loss,omitempty"`
}

// Config is the whole impairment state. Every request replaces it whole;
// directions not listed pass unimpaired.
type Config struct {
	Links []Link `json:"links,omitempty"`
	// Blackhole lists addresses whose packets, to or from them, are all
	// dropped.
	Blackhole []netip.Addr `json:"blackhole,omitempty"`
}

// MaxDelay bounds Delay+Jitter; anything longer is a configuration mistake
// that would only pile packets up in the kernel queue.
const MaxDelay = 10 * time.Second

// Validate reports every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	seen := map[[2]netip.Addr]int{}
	for i, l := range c.Links {
		p := fmt.Sprintf("links[%d]", i)
		if !l.Src.Is4() {
			errs = append(errs, fmt.Errorf("%s.src: %q is not an IPv4 address", p, l.Src))
		}
		if !l.Dst.Is4() {
			errs = append(errs, fmt.Errorf("%s.dst: %q is not an IPv4 address", p, l.Dst))
		}
		if l.Delay < 0 || l.Jitter < 0 || time.Duration(l.Delay+l.Jitter) > MaxDelay {
			errs = append(errs, fmt.Errorf("%s: delay %v + jitter %v must be within 0..%v", p, time.Duration(l.Delay), time.Duration(l.Jitter), MaxDelay))
		}
		if !(l.Loss >= 0 && l.Loss <= 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("%s.loss: %v is not within 0..1", p, l.Loss))
		}
		k := [2]netip.Addr{l.Src, l.Dst}
		if j, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("%s: direction %v->%v already set by links[%d]", p, l.Src, l.Dst, j))
		}
		seen[k] = i
	}
	for i, a := range c.Blackhole {
		if !a.Is4() {
			errs = append(errs, fmt.Errorf("blackhole[%d]: %q is not an IPv4 address", i, a))
		}
	}
	return errors.Join(errs...)
}

// Ops of a Request.
const (
	OpSet   = "set"   // replace the config
	OpStats = "stats" // report counters only
)

// Request is one line on the tool's stdin.
type Request struct {
	ID     uint64  `json:"id"`
	Op     string  `json:"op"`
	Config *Config `json:"config,omitempty"`
}

// Reply is one line on the tool's stdout. The tool also writes one
// unsolicited Reply with Ready set once its queue is bound.
type Reply struct {
	ID    uint64 `json:"id"`
	Ready bool   `json:"ready,omitempty"`
	Error string `json:"error,omitempty"`
	Stats Stats  `json:"stats"`
}

// Stats counts packets by fate since the tool started.
type Stats struct {
	Received   uint64 `json:"received"`   // packets handed over by the kernel
	Accepted   uint64 `json:"accepted"`   // accept verdicts sent
	Lost       uint64 `json:"lost"`       // dropped by the loss probability
	Blackholed uint64 `json:"blackholed"` // dropped by a blackhole
	Delayed    uint64 `json:"delayed"`    // accepted after a delay (subset of Accepted)
	Pending    int    `json:"pending"`    // held right now
	Malformed  uint64 `json:"malformed"`  // netlink messages that did not parse
	// Dropped by the kernel before the tool saw them: queue full
	// (queue_dropped) or netlink socket full (user_dropped), from
	// /proc/net/netfilter/nfnetlink_queue. Non-zero means the emulation
	// is overloaded and the loss seen is higher than configured.
	KernelDropped uint64 `json:"kernel_dropped"`
	// Late counts delayed packets whose accept verdict went out more
	// than LateThreshold after they were due, and MaxLateMs is the worst
	// such lateness: the tool itself was not scheduled in time (CPU
	// load), so the delay seen was longer than configured. A test that
	// depends on the configured delay treats Late > 0 as an overloaded
	// emulator, not a failure of what it tests.
	Late      uint64  `json:"late"`
	MaxLateMs float64 `json:"max_late_ms"`
}

// LateThreshold is how much later than due a delayed packet may be let
// go before it counts as Late.
const LateThreshold = 20 * time.Millisecond
