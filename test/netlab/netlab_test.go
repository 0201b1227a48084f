package netlab_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/test/netlab"
)

// impairBin is built once for the whole package run.
var (
	impairOnce sync.Once
	impairPath string
	impairErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if impairPath != "" && os.Getenv(netlab.EnvImpair) == "" {
		os.RemoveAll(filepath.Dir(impairPath))
	}
	os.Exit(code)
}

func newLab(t *testing.T, hosts ...string) (*netlab.Lab, map[string]*netlab.Host) {
	t.Helper()
	netlab.RequireRoot(t)
	impairOnce.Do(func() {
		if p := os.Getenv(netlab.EnvImpair); p != "" {
			impairPath = p
			return
		}
		dir, err := os.MkdirTemp("", "netlab-impair-")
		if err != nil {
			impairErr = err
			return
		}
		out := filepath.Join(dir, "impair")
		b, err := exec.Command("go", "build", "-o", out, netlab.ImpairPackage).CombinedOutput()
		if err != nil {
			impairErr = fmt.Errorf("%w: %s", err, b)
			return
		}
		impairPath = out
	})
	if impairErr != nil {
		t.Fatalf("build impair: %v", impairErr)
	}
	lab, err := netlab.New(t, netlab.Config{ImpairPath: impairPath, Seed: 42})
	if err != nil {
		t.Fatalf("netlab.New: %v", err)
	}
	hs := map[string]*netlab.Host{}
	for _, name := range hosts {
		h, err := lab.AddHost(name)
		if err != nil {
			t.Fatalf("AddHost(%s): %v", name, err)
		}
		hs[name] = h
	}
	return lab, hs
}

// startEcho runs a UDP echo server on h and returns its address.
func startEcho(t *testing.T, h *netlab.Host) net.Addr {
	t.Helper()
	c, err := h.ListenPacket("udp4", h.Addr().String()+":0")
	if err != nil {
		t.Fatalf("echo listen on %s: %v", h.Name(), err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr()
}

// probe sends count numbered probes from h to echo, one at a time, and
// returns the RTT of each that came back within timeout.
// answerWait bounds the wait for an echo that must come back: only a
// failure waits it out, so it is long enough for a loaded machine (CI on
// a fresh machine at load 32 once took over 1 s for one of three).
const answerWait = 5 * time.Second

func probe(t *testing.T, h *netlab.Host, echo net.Addr, count int, timeout time.Duration) []time.Duration {
	t.Helper()
	c, err := h.ListenPacket("udp4", h.Addr().String()+":0")
	if err != nil {
		t.Fatalf("probe listen on %s: %v", h.Name(), err)
	}
	defer c.Close()
	var rtts []time.Duration
	buf := make([]byte, 64)
	for i := range count {
		msg := binary.BigEndian.AppendUint64([]byte("probe"), uint64(i))
		start := time.Now()
		if _, err := c.WriteTo(msg, echo); err != nil {
			t.Fatalf("probe write: %v", err)
		}
		deadline := start.Add(timeout)
		for {
			_ = c.SetReadDeadline(deadline)
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				break // timed out: lost
			}
			if bytes.Equal(buf[:n], msg) {
				rtts = append(rtts, time.Since(start))
				break
			}
			// a late answer to an earlier probe: keep waiting for this one
		}
	}
	return rtts
}

// udpPair returns a sender on from and a receiver on to whose packets
// are collected by a goroutine from the start (with a large buffer), so
// that the receiver's socket buffer is never what drops them. Call the
// returned func to get the payloads received until idle passes quietly.
func udpPair(t *testing.T, from, to *netlab.Host, idle time.Duration) (net.PacketConn, net.Addr, func() [][]byte) {
	t.Helper()
	rx, err := to.ListenPacket("udp4", to.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	_ = rx.(*net.UDPConn).SetReadBuffer(4 << 20)
	tx, err := from.ListenPacket("udp4", from.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	done := make(chan [][]byte, 1)
	go func() {
		var got [][]byte
		buf := make([]byte, 2048)
		// The first wait is longer: the sender may not have started.
		_ = rx.SetReadDeadline(time.Now().Add(idle + 10*time.Second))
		for {
			n, _, err := rx.ReadFrom(buf)
			if err != nil {
				done <- got
				return
			}
			got = append(got, append([]byte(nil), buf[:n]...))
			_ = rx.SetReadDeadline(time.Now().Add(idle))
		}
	}()
	return tx, rx.LocalAddr(), func() [][]byte { return <-done }
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestConnectivity(t *testing.T) {
	_, hs := newLab(t, "sin", "fra", "tyo")
	for _, c := range []struct{ from, to string }{
		{"sin", "fra"}, {"fra", "tyo"}, {"tyo", "sin"},
	} {
		t.Run(c.from+"->"+c.to, func(t *testing.T) {
			echo := startEcho(t, hs[c.to])
			if got := probe(t, hs[c.from], echo, 5, answerWait); len(got) != 5 {
				t.Fatalf("%d of 5 echoes came back on an unimpaired link", len(got))
			}
		})
	}
	t.Run("command runs in the namespace", func(t *testing.T) {
		out, err := hs["fra"].Command(context.Background(), "ip", "-o", "-4", "addr", "show", "dev", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip addr in fra: %v: %s", err, out)
		}
		if !strings.Contains(string(out), " "+hs["fra"].Addr().String()+"/") {
			t.Fatalf("eth0 in fra's namespace does not have %v: %s", hs["fra"].Addr(), out)
		}
	})
	t.Run("addresses", func(t *testing.T) {
		seen := map[string]bool{}
		for name, h := range hs {
			if !h.Addr().Is4() || seen[h.Addr().String()] {
				t.Fatalf("host %s has address %v: want a unique IPv4 address", name, h.Addr())
			}
			seen[h.Addr().String()] = true
		}
	})
}

func TestDelayMatrix(t *testing.T) {
	lab, hs := newLab(t, "sin", "fra", "tyo")
	rtt := map[[2]string]time.Duration{
		{"sin", "fra"}: 160 * time.Millisecond,
		{"sin", "tyo"}: 70 * time.Millisecond,
		{"tyo", "fra"}: 230 * time.Millisecond,
	}
	for p, d := range rtt {
		if err := lab.SetLink(p[0], p[1], netlab.RTT(d, 0)); err != nil {
			t.Fatalf("SetLink(%s, %s): %v", p[0], p[1], err)
		}
	}
	for _, p := range [][2]string{{"sin", "fra"}, {"sin", "tyo"}, {"tyo", "fra"}} {
		t.Run(p[0]+"<->"+p[1], func(t *testing.T) {
			t.Parallel()
			want := rtt[p]
			echo := startEcho(t, hs[p[1]])
			got := probe(t, hs[p[0]], echo, 20, want+2*time.Second)
			if len(got) != 20 {
				t.Fatalf("%d of 20 probes came back with no loss configured", len(got))
			}
			// A lower bound only: noise can make RTTs longer, never shorter.
			if m := slices.Min(got); m < want {
				t.Fatalf("minimum RTT %v is below the configured %v", m, want)
			}
			t.Logf("%s<->%s configured RTT %v: min %v median %v max %v",
				p[0], p[1], want, slices.Min(got), median(got), slices.Max(got))
		})
	}
}

func TestOneWayDelayKeepsOrder(t *testing.T) {
	lab, hs := newLab(t, "a", "b")
	if err := lab.SetOneWay("a", "b", netlab.Impairment{Delay: 30 * time.Millisecond, Jitter: 20 * time.Millisecond}); err != nil {
		t.Fatalf("SetOneWay: %v", err)
	}
	tx, dst, received := udpPair(t, hs["a"], hs["b"], 2*time.Second)
	const n = 300
	for i := range n {
		if _, err := tx.WriteTo(binary.BigEndian.AppendUint32(nil, uint32(i)), dst); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond) // pace a little: the receive buffer is not under test
		}
	}
	var got []uint32
	for _, p := range received() {
		got = append(got, binary.BigEndian.Uint32(p))
	}
	if len(got) != n {
		t.Fatalf("received %d of %d packets with no loss configured", len(got), n)
	}
	if !slices.IsSorted(got) {
		t.Fatalf("packets reordered on a jittered link: %v", got)
	}
}

// TCP (memberlist, HTTP) through a delayed, lossy link arrives intact.
func TestTCPThroughImpairedLink(t *testing.T) {
	lab, hs := newLab(t, "edge", "center")
	if err := lab.SetLink("edge", "center", netlab.Impairment{Delay: 40 * time.Millisecond, Loss: 0.01}); err != nil {
		t.Fatal(err)
	}
	ln, err := hs["center"].Listen("tcp4", hs["center"].Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 4 << 20
	type result struct {
		n   int64
		sum byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		var r result
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			for _, b := range buf[:n] {
				r.sum ^= b
			}
			r.n += int64(n)
			if err != nil {
				break
			}
		}
		res <- r
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := hs["edge"].DialContext(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial center from edge: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	payload := make([]byte, size)
	var sum byte
	for i := range payload {
		payload[i] = byte(i * 7)
		sum ^= payload[i]
	}
	start := time.Now()
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.Close()
	r := <-res
	if r.n != size || r.sum != sum {
		t.Fatalf("center got %d bytes (xor %#x), want %d (xor %#x); err %v", r.n, r.sum, size, sum, r.err)
	}
	s, _ := lab.Stats()
	t.Logf("4 MiB over TCP at 80ms RTT, 1%% loss: %v; impair stats %+v", time.Since(start).Round(time.Millisecond), s)
}

func TestLoss(t *testing.T) {
	lab, hs := newLab(t, "a", "b")
	const loss = 0.10
	if err := lab.SetOneWay("a", "b", netlab.Impairment{Loss: loss}); err != nil {
		t.Fatalf("SetOneWay: %v", err)
	}
	tx, dst, received := udpPair(t, hs["a"], hs["b"], time.Second)
	before, err := lab.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		if _, err := tx.WriteTo([]byte("loss"), dst); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // pace a little: the receive buffer is not under test
		}
	}
	got := len(received())
	after, err := lab.Stats()
	if err != nil {
		t.Fatal(err)
	}
	frac := float64(got) / n
	lost := after.Lost - before.Lost
	t.Logf("loss %.0f%% configured: received %d of %d (%.1f%%); impair dropped %d", loss*100, got, n, frac*100, lost)
	if frac < 0.80 || frac > 0.97 {
		t.Fatalf("received %.1f%% of packets with %.0f%% loss configured: want 80%%..97%%", frac*100, loss*100)
	}
	// What impair dropped never arrived; and what is missing was dropped
	// by impair, give or take a few lost in the receiver under load.
	if missing := n - got; int(lost) > missing || missing-int(lost) > 20 {
		t.Errorf("impair counted %d losses but %d of %d packets are missing", lost, missing, n)
	}
	if after.KernelDropped != before.KernelDropped {
		t.Errorf("the kernel dropped %d packets before impair saw them: emulation overloaded", after.KernelDropped-before.KernelDropped)
	}
}

func TestBlackhole(t *testing.T) {
	lab, hs := newLab(t, "a", "b", "c")
	echoB := startEcho(t, hs["b"])
	echoC := startEcho(t, hs["c"])
	if got := probe(t, hs["a"], echoB, 3, answerWait); len(got) != 3 {
		t.Fatalf("before blackhole: %d of 3 echoes came back", len(got))
	}
	if err := lab.Blackhole("b", true); err != nil {
		t.Fatalf("Blackhole on: %v", err)
	}
	t.Run("cut off", func(t *testing.T) {
		if got := probe(t, hs["a"], echoB, 5, 300*time.Millisecond); len(got) != 0 {
			t.Fatalf("%d of 5 echoes came back from a blackholed host", len(got))
		}
		s, err := lab.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Blackholed < 5 {
			t.Fatalf("impair counted %d blackholed packets, want at least the 5 probes", s.Blackholed)
		}
	})
	t.Run("others unaffected", func(t *testing.T) {
		if got := probe(t, hs["a"], echoC, 3, answerWait); len(got) != 3 {
			t.Fatalf("%d of 3 echoes came back between hosts that are not blackholed", len(got))
		}
	})
	if err := lab.Blackhole("b", false); err != nil {
		t.Fatalf("Blackhole off: %v", err)
	}
	t.Run("restored", func(t *testing.T) {
		poll.Until(t, 5*time.Second, "echoes from b after lifting the blackhole", func() bool {
			return len(probe(t, hs["a"], echoB, 1, 300*time.Millisecond)) == 1
		})
	})
}

func TestBadInput(t *testing.T) {
	lab, _ := newLab(t, "a", "b")
	cases := []struct {
		name string
		call func() error
	}{
		{"unknown host", func() error { return lab.SetLink("a", "nope", netlab.RTT(time.Millisecond, 0)) }},
		{"self link", func() error { return lab.SetLink("a", "a", netlab.RTT(time.Millisecond, 0)) }},
		{"loss above 1", func() error { return lab.SetLink("a", "b", netlab.Impairment{Loss: 1.5}) }},
		{"negative delay", func() error { return lab.SetLink("a", "b", netlab.Impairment{Delay: -time.Second}) }},
		{"duplicate host", func() error { _, err := lab.AddHost("a"); return err }},
		{"bad host name", func() error { _, err := lab.AddHost("Bad_Name"); return err }},
		{"blackhole unknown", func() error { return lab.Blackhole("zzz", true) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); err == nil {
				t.Fatal("accepted; want an error")
			}
		})
	}
}

func namespacesWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			found = append(found, f[0])
		}
	}
	return found
}

func rootState(t *testing.T) string {
	t.Helper()
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	rules, err := exec.Command("iptables-legacy-save").Output()
	if err != nil {
		t.Fatalf("iptables-legacy-save: %v", err)
	}
	var keep []string
	for _, l := range strings.Split(string(rules), "\n") {
		if strings.HasPrefix(l, "#") { // timestamps
			continue
		}
		// a chain's packet and byte counters change with any traffic
		if i := strings.Index(l, " ["); strings.HasPrefix(l, ":") && i > 0 {
			l = l[:i]
		}
		keep = append(keep, l)
	}
	// Interface names and count only: counters change with other tests.
	var names []string
	for _, l := range strings.Split(string(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, f[1])
		}
	}
	return strings.Join(names, " ") + "\n" + strings.Join(keep, "\n")
}

func TestCloseLeavesNothing(t *testing.T) {
	netlab.RequireRoot(t)
	_, _ = newLab(t) // builds impair
	before := rootState(t)
	// No ImpairPath: New builds impair itself (or uses $RELAYMESH_IMPAIR).
	lab, err := netlab.New(nil, netlab.Config{Prefix: "rmtclose"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h, err := lab.AddHost("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.AddHost("b"); err != nil {
		t.Fatal(err)
	}
	if err := lab.SetLink("a", "b", netlab.RTT(50*time.Millisecond, 0.01)); err != nil {
		t.Fatal(err)
	}
	sleeper := h.Command(context.Background(), "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatalf("start sleep in host: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()
	if got := namespacesWithPrefix(t, "rmtclose-"); len(got) != 3 {
		t.Fatalf("namespaces while open: %v, want hub, a and b", got)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("process started in a host still runs after Close")
	}
	if got := namespacesWithPrefix(t, "rmtclose-"); len(got) != 0 {
		t.Fatalf("namespaces left after Close: %v", got)
	}
	if _, err := os.Stat(lab.WorkDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("work dir %s left after Close (err %v)", lab.WorkDir(), err)
	}
	if after := rootState(t); after != before {
		t.Fatalf("root namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if err := lab.SetLink("a", "b", netlab.Impairment{}); !errors.Is(err, netlab.ErrClosed) {
		t.Fatalf("SetLink after Close: %v, want ErrClosed", err)
	}
}

func TestSweepsLeftovers(t *testing.T) {
	netlab.RequireRoot(t)
	_, _ = newLab(t) // builds impair
	// A pid that no longer runs: a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("rmtsweep-%d-1-x", dead.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", stale).Run() })
	lab, err := netlab.New(t, netlab.Config{ImpairPath: impairPath, Prefix: "rmtsweep"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, ns := range namespacesWithPrefix(t, "rmtsweep-") {
		if ns == stale {
			t.Fatalf("leftover namespace %s of dead pid %d survived New", stale, dead.Process.Pid)
		}
	}
	if got := namespacesWithPrefix(t, "rmtsweep-"); len(got) != 1 || got[0] != lab.HubNamespace() {
		t.Fatalf("namespaces after New: %v, want only %s", got, lab.HubNamespace())
	}
}
