// Package netlab builds throwaway networks for cluster tests: hosts in
// their own network namespaces on one bridge, with WAN-like delay, jitter
// and loss per pair of hosts and a blackhole switch per host.
//
// The kernel the tests run on has no netem, so the bridge lives in a
// dedicated "hub" namespace where br_netfilter sends every bridged IPv4
// packet between hosts through the iptables FORWARD chain into NFQUEUE 0,
// and the test/impair tool, running in the hub, delays, drops or passes
// each one by its source and destination address. Nothing is created in
// the caller's own namespace, so Close only has to kill the processes in
// the lab's namespaces and delete the namespaces.
//
//	lab, err := netlab.New(t, netlab.Config{})
//	fra, _ := lab.AddHost("fra")
//	sin, _ := lab.AddHost("sin")
//	lab.SetLink("sin", "fra", netlab.RTT(160*time.Millisecond, 0.01))
//	cmd := fra.Command(ctx, relaymeshBin, "run", "-config", cfg)
//	lab.Blackhole("fra", true) // fra silently cut off
//
// All of it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), ip from
// iproute2 and iptables-legacy.
package netlab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/test/impair/control"
)

// Config describes a lab. The zero value is usable.
type Config struct {
	// Subnet holds the hosts' addresses, handed out from .1 on.
	// Default 10.77.0.0/24.
	Subnet string
	// Prefix starts every namespace name; namespaces with this prefix left
	// by processes that no longer run are deleted by New. Default "rmt".
	Prefix string
	// ImpairPath is a prebuilt test/impair binary. Empty: $RELAYMESH_IMPAIR,
	// else New builds it with go build.
	ImpairPath string
	// Seed seeds the loss and jitter RNG (0: from the clock).
	Seed uint64
}

// Impairment is what one direction of a link suffers.
type Impairment struct {
	Delay  time.Duration // one-way delay
	Jitter time.Duration // extra uniform delay in [0, Jitter]; order is kept
	Loss   float64       // drop probability, 0..1
}

// RTT returns the symmetric impairment that gives a round-trip time of
// rtt, losing loss of the packets in each direction.
func RTT(rtt time.Duration, loss float64) Impairment {
	return Impairment{Delay: rtt / 2, Loss: loss}
}

// Stats are the impair tool's packet counters.
type Stats = control.Stats

// ErrClosed is returned by a Lab's methods after Close.
var ErrClosed = errors.New("netlab: lab is closed")

var labSeq atomic.Uint64

// Lab is one isolated network. Its methods are safe for concurrent use.
type Lab struct {
	tb      testing.TB
	prefix  netip.Prefix
	base    string // namespace name base
	hubNS   string
	workDir string
	ownDir  bool

	mu        sync.Mutex
	closed    bool
	hosts     map[string]*Host
	order     []*Host
	nextAddr  netip.Addr
	links     map[[2]netip.Addr]Impairment
	blackhole map[netip.Addr]bool
	impair    *impairProc
	closeErr  error
}

// RequireRoot skips the test, with the reason, unless it runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("netlab needs root to create network namespaces; CI runs these tests as root")
	}
}

// New creates the hub namespace with its bridge, the NFQUEUE rule and the
// impair tool. With a non-nil tb, the work directory is tb.TempDir() and
// Close is registered with tb.Cleanup; otherwise the caller must Close.
func New(tb testing.TB, cfg Config) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("netlab: needs root to create network namespaces")
	}
	if cfg.Subnet == "" {
		cfg.Subnet = "10.77.0.0/24"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "rmt"
	}
	if err := validPrefix(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	pfx, err := netip.ParsePrefix(cfg.Subnet)
	if err != nil || !pfx.Addr().Is4() || pfx.Bits() > 30 || pfx.Bits() < 8 {
		return nil, fmt.Errorf("netlab: subnet %q: want an IPv4 prefix from /8 to /30 such as 10.77.0.0/24", cfg.Subnet)
	}
	pfx = pfx.Masked()
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if err := sweepLeftovers(cfg.Prefix); err != nil {
		return nil, fmt.Errorf("netlab: remove leftovers of an earlier run: %w", err)
	}

	base := fmt.Sprintf("%s-%d-%d", cfg.Prefix, os.Getpid(), labSeq.Add(1))
	l := &Lab{
		tb:        tb,
		prefix:    pfx,
		base:      base,
		hubNS:     base + "_hub",
		hosts:     map[string]*Host{},
		nextAddr:  pfx.Addr().Next(),
		links:     map[[2]netip.Addr]Impairment{},
		blackhole: map[netip.Addr]bool{},
	}
	if tb != nil {
		l.workDir = tb.TempDir()
		tb.Cleanup(func() {
			if err := l.Close(); err != nil {
				tb.Errorf("netlab: close: %v", err)
			}
		})
	} else {
		if l.workDir, err = os.MkdirTemp("", base+"-"); err != nil {
			return nil, err
		}
		l.ownDir = true
	}
	if err := l.setup(cfg); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) setup(cfg Config) error {
	bin := cfg.ImpairPath
	if bin == "" {
		bin = os.Getenv(EnvImpair)
	}
	if bin == "" {
		var err error
		if bin, err = buildImpair(l.workDir); err != nil {
			return fmt.Errorf("netlab: %w", err)
		}
	}
	steps := [][]string{
		{"netns", "add", l.hubNS},
		{"-n", l.hubNS, "link", "set", "lo", "up"},
		{"-n", l.hubNS, "link", "add", "br0", "type", "bridge"},
		{"-n", l.hubNS, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return fmt.Errorf("netlab: %w", err)
		}
	}
	// Bridged IPv4 goes through iptables in the hub only.
	if err := inNamespace(l.hubNS, func() error {
		return os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("1\n"), 0o644)
	}); err != nil {
		return fmt.Errorf("netlab: enable br_netfilter in the hub (is the br_netfilter module there?): %w", err)
	}
	p, err := startImpair(bin, l.hubNS, filepath.Join(l.workDir, "impair.log"), cfg.Seed)
	if err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	l.impair = p
	sub := l.prefix.String()
	if _, err := runOut("ip", "netns", "exec", l.hubNS, "iptables-legacy", "-w", "10",
		"-A", "FORWARD", "-s", sub, "-d", sub, "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}

// HubNamespace is the name of the namespace holding the bridge and the
// impair tool.
func (l *Lab) HubNamespace() string { return l.hubNS }

// WorkDir holds the lab's files, among them impair.log.
func (l *Lab) WorkDir() string { return l.workDir }

// AddHost creates host name: a namespace with loopback up and eth0 on the
// bridge, with the next free address of the subnet.
func (l *Lab) AddHost(name string) (*Host, error) {
	if err := validHostName(name); err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if _, dup := l.hosts[name]; dup {
		return nil, fmt.Errorf("netlab: host %q already exists", name)
	}
	addr := l.nextAddr
	if !l.prefix.Contains(addr.Next()) { // keep the broadcast address free
		return nil, fmt.Errorf("netlab: subnet %v is full", l.prefix)
	}
	h := &Host{lab: l, name: name, ns: l.base + "-" + name, addr: addr, index: len(l.order)}
	hubIf := fmt.Sprintf("v%d", h.index)
	cidr := netip.PrefixFrom(addr, l.prefix.Bits()).String()
	steps := [][]string{
		{"netns", "add", h.ns},
		{"-n", l.hubNS, "link", "add", hubIf, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
		{"-n", l.hubNS, "link", "set", hubIf, "master", "br0", "up"},
		{"-n", h.ns, "link", "set", "lo", "up"},
		// One MSS per packet, so that loss hits TCP segments, not 64 KiB
		// GSO bursts.
		{"-n", h.ns, "link", "set", "eth0", "gso_max_segs", "1"},
		{"-n", h.ns, "addr", "add", cidr, "dev", "eth0"},
		{"-n", h.ns, "link", "set", "eth0", "up"},
	}
	// Registered before the first step so that Close removes a half-made
	// host too.
	l.hosts[name] = h
	l.order = append(l.order, h)
	l.nextAddr = addr.Next()
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, fmt.Errorf("netlab: add host %s: %w", name, err)
		}
	}
	return h, nil
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Hosts returns the hosts in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.order...)
}

// SetLink sets the impairment of both directions between hosts a and b;
// the zero Impairment clears it. It returns once the tool applies it.
func (l *Lab) SetLink(a, b string, imp Impairment) error {
	return l.update(func() error {
		ha, hb, err := l.pairLocked(a, b)
		if err != nil {
			return err
		}
		l.setLocked(ha.addr, hb.addr, imp)
		l.setLocked(hb.addr, ha.addr, imp)
		return nil
	})
}

// SetOneWay sets the impairment of packets from src to dst only.
func (l *Lab) SetOneWay(src, dst string, imp Impairment) error {
	return l.update(func() error {
		hs, hd, err := l.pairLocked(src, dst)
		if err != nil {
			return err
		}
		l.setLocked(hs.addr, hd.addr, imp)
		return nil
	})
}

// Blackhole drops (on) or passes again (off) every packet to or from
// host name. Nothing tells the host or its peers.
func (l *Lab) Blackhole(name string, on bool) error {
	return l.update(func() error {
		h := l.hosts[name]
		if h == nil {
			return fmt.Errorf("netlab: no host %q", name)
		}
		if on {
			l.blackhole[h.addr] = true
		} else {
			delete(l.blackhole, h.addr)
		}
		return nil
	})
}

// Stats returns the impair tool's counters.
func (l *Lab) Stats() (Stats, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Stats{}, ErrClosed
	}
	return l.impair.request(control.OpStats, nil)
}

func (l *Lab) pairLocked(a, b string) (*Host, *Host, error) {
	ha, hb := l.hosts[a], l.hosts[b]
	switch {
	case ha == nil:
		return nil, nil, fmt.Errorf("netlab: no host %q", a)
	case hb == nil:
		return nil, nil, fmt.Errorf("netlab: no host %q", b)
	case ha == hb:
		return nil, nil, fmt.Errorf("netlab: link from %q to itself", a)
	}
	return ha, hb, nil
}

func (l *Lab) setLocked(src, dst netip.Addr, imp Impairment) {
	if imp == (Impairment{}) {
		delete(l.links, [2]netip.Addr{src, dst})
	} else {
		l.links[[2]netip.Addr{src, dst}] = imp
	}
}

// update applies change to the lab's state and sends the whole state to
// the tool; if the tool refuses it the old state is restored.
func (l *Lab) update(change func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	oldLinks, oldBH := cloneMap(l.links), cloneMap(l.blackhole)
	if err := change(); err != nil {
		return err
	}
	cfg := l.configLocked()
	err := cfg.Validate()
	if err == nil {
		_, err = l.impair.request(control.OpSet, &cfg)
	}
	if err != nil {
		l.links, l.blackhole = oldLinks, oldBH
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (l *Lab) configLocked() control.Config {
	var c control.Config
	for k, imp := range l.links {
		c.Links = append(c.Links, control.Link{
			Src: k[0], Dst: k[1],
			Delay: control.Duration(imp.Delay), Jitter: control.Duration(imp.Jitter), Loss: imp.Loss,
		})
	}
	sort.Slice(c.Links, func(i, j int) bool {
		if c.Links[i].Src != c.Links[j].Src {
			return c.Links[i].Src.Less(c.Links[j].Src)
		}
		return c.Links[i].Dst.Less(c.Links[j].Dst)
	})
	for a := range l.blackhole {
		c.Blackhole = append(c.Blackhole, a)
	}
	sort.Slice(c.Blackhole, func(i, j int) bool { return c.Blackhole[i].Less(c.Blackhole[j]) })
	return c
}

// Close kills every process in the lab's namespaces by PID, stops the
// impair tool and deletes the namespaces (with them the bridge, the veths
// and the iptables rule). It is idempotent and safe after a failed New.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return l.closeErr
	}
	l.closed = true
	var errs []error
	for _, h := range l.order {
		errs = append(errs, killIfExists(h.ns))
	}
	if l.impair != nil {
		errs = append(errs, l.impair.stop())
		if l.tb != nil && l.tb.Failed() {
			if b, err := os.ReadFile(filepath.Join(l.workDir, "impair.log")); err == nil {
				l.tb.Logf("netlab: impair.log:\n%s", tail(b, 4000))
			}
		}
	}
	for _, h := range l.order {
		errs = append(errs, deleteNamespace(h.ns))
	}
	errs = append(errs, deleteNamespace(l.hubNS))
	if l.ownDir {
		errs = append(errs, os.RemoveAll(l.workDir))
	}
	l.closeErr = errors.Join(errs...)
	return l.closeErr
}

func killIfExists(ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); err != nil {
		return nil
	}
	return killNamespacePIDs(ns)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
