package gossip

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

func TestClusterConverges(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeKeyFile(t, key)
	start := time.Now()
	nodes := startCluster(t, 5, keyFile)
	joined := time.Since(start)
	conv := poll.Until(t, 10*time.Second, "all 5 nodes to see 5 alive members", func() bool {
		for _, n := range nodes {
			if aliveCount(n.Cluster) != 5 {
				return false
			}
		}
		return true
	})
	t.Logf("5-node loopback cluster: joins took %v, full membership everywhere %v after the last join", joined, conv)

	m, ok := nodes[4].Member("n0")
	if !ok {
		t.Fatal("n4 does not know n0")
	}
	if m.Meta.Role != RoleCenter || m.Meta.Site != "fra" || m.Meta.Name != "n0" {
		t.Errorf("n4 sees n0 meta %+v, want role center site fra name n0", m.Meta)
	}
	if !m.Addr.IsValid() || m.Addr != nodes[0].Addr() {
		t.Errorf("n4 sees n0 at %v, want %v", m.Addr, nodes[0].Addr())
	}
	rttWait := poll.Until(t, 15*time.Second, "n0 to measure RTT to every peer", func() bool {
		for _, m := range nodes[0].Members() {
			if !m.Local && m.MeasuredAt.IsZero() {
				return false
			}
		}
		return true
	})
	for _, m := range nodes[0].Members() {
		rtt, ok := nodes[0].RTT(m.Name)
		if !ok || rtt < 0 || rtt > time.Second {
			t.Errorf("RTT(%s) = %v, %v; want a known loopback RTT", m.Name, rtt, ok)
		}
		t.Logf("n0 -> %s: estimated %v, measured %v", m.Name, m.RTT, m.MeasuredRTT)
	}
	t.Logf("RTT to all peers measured after %v", rttWait)
	if _, ok := nodes[0].RTT("nobody"); ok {
		t.Error("RTT of an unknown node reported as known")
	}
	if ev, ok := nodes[0].events.find(EventJoin, "n3"); !ok || ev.Member.Meta.Role != RoleCenter {
		t.Errorf("n0 got no join event for n3 with its metadata (found=%v)", ok)
	}
}

func TestJoinWrongKeyRefused(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	a := startNode(t, "a", NodeMeta{}, writeKeyFile(t, k1))
	b := startNode(t, "b", NodeMeta{}, writeKeyFile(t, k2))
	err := b.Join([]string{a.Addr().String()})
	if err == nil {
		t.Fatal("join with a different gossip key succeeded")
	}
	if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), "gossip key mismatch or peer unreachable") {
		t.Errorf("join error = %q; want ErrKeyMismatch saying \"gossip key mismatch or peer unreachable\"", err)
	}
	t.Logf("error shown: %v", err)

	plain := startNode(t, "plain", NodeMeta{}, "")
	if err := plain.Join([]string{a.Addr().String()}); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("unencrypted join to an encrypted node: err = %v, want ErrKeyMismatch", err)
	}
	for _, n := range []*testNode{a, b, plain} {
		if got := aliveCount(n.Cluster); got != 1 {
			t.Errorf("%s sees %d alive members after refused joins, want 1", n.Name(), got)
		}
	}
}

func TestJoinUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	a := startNode(t, "a", NodeMeta{}, "")
	err = a.Join([]string{dead})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("join of a closed port: err = %v, want ErrUnreachable", err)
	}
}

func TestNewPortInUse(t *testing.T) {
	a := startNode(t, "a", NodeMeta{}, "")
	_, err := New(Config{NodeName: "b", BindAddr: "127.0.0.1", BindPort: int(a.Addr().Port()), Meta: NodeMeta{Role: RoleEdge}}, testLogger())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("New on a used port: err = %v, want address already in use", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{Meta: NodeMeta{Role: RoleEdge}}, "node_name"},
		{"bad role", Config{NodeName: "x", Meta: NodeMeta{Role: "hub"}}, "role"},
		{"bad bind", Config{NodeName: "x", BindAddr: "nope", Meta: NodeMeta{Role: RoleEdge}}, "bind_addr"},
		{"bad key file", Config{NodeName: "x", KeyFile: "/nonexistent/gossip.key", Meta: NodeMeta{Role: RoleEdge}}, "/nonexistent/gossip.key"},
		{"meta too large", Config{NodeName: "x", Meta: NodeMeta{Role: RoleEdge, Site: strings.Repeat("s", 600)}}, "too large"},
		{"probe timeout above interval", Config{NodeName: "x", Meta: NodeMeta{Role: RoleEdge}, Timings: Timings{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second}}, "probe_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.BindAddr = cmpOr(tt.cfg.BindAddr, "127.0.0.1")
			c, err := New(tt.cfg, testLogger())
			if err == nil {
				c.Close()
				t.Fatalf("New succeeded, want an error mentioning %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %q, want it to mention %q", err, tt.want)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close after failed New: %v", err)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestDirectoryPropagation(t *testing.T) {
	nodes := startCluster(t, 5, "")
	poll.Until(t, 10*time.Second, "5-node convergence", func() bool {
		for _, n := range nodes {
			if aliveCount(n.Cluster) != 5 {
				return false
			}
		}
		return true
	})
	seenEverywhere := func(stream, owner string) func() bool {
		return func() bool {
			for _, n := range nodes {
				e, ok := n.Lookup(stream)
				if owner == "" && ok || owner != "" && (!ok || e.Node != owner) {
					return false
				}
			}
			return true
		}
	}
	for i := range 3 {
		stream := fmt.Sprintf("live/s%d", i)
		if err := nodes[2].Publish(stream); err != nil {
			t.Fatal(err)
		}
		d := poll.Until(t, 10*time.Second, stream+" on every node", seenEverywhere(stream, "n2"))
		t.Logf("publish %s: in all 5 directories after %v", stream, d)
	}
	if err := nodes[3].Publish("live/s0"); err != nil {
		t.Fatal(err)
	}
	d := poll.Until(t, 10*time.Second, "newer claim of live/s0 by n3 everywhere", seenEverywhere("live/s0", "n3"))
	t.Logf("takeover of live/s0 by n3: everywhere after %v", d)

	if err := nodes[2].Unpublish("live/s0"); err != nil { // not the owner any more: no-op
		t.Fatal(err)
	}
	if err := nodes[2].Unpublish("live/s1"); err != nil {
		t.Fatal(err)
	}
	d = poll.Until(t, 10*time.Second, "live/s1 gone everywhere", seenEverywhere("live/s1", ""))
	t.Logf("unpublish live/s1: gone everywhere after %v", d)
	for _, n := range nodes {
		if e, ok := n.Lookup("live/s0"); !ok || e.Node != "n3" {
			t.Errorf("%s: live/s0 -> %v %v after a non-owner unpublish, want n3", n.Name(), e.Node, ok)
		}
		if got := len(n.Directory()); got != 2 {
			t.Errorf("%s: directory has %d live entries, want 2 (live/s0, live/s2)", n.Name(), got)
		}
	}

	// A node joining later gets the directory by push/pull.
	late := startNode(t, "late", NodeMeta{Role: RoleEdge}, "")
	if err := late.Join([]string{nodes[0].Addr().String()}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "late joiner to know live/s2", func() bool {
		e, ok := late.Lookup("live/s2")
		return ok && e.Node == "n2"
	})
	if _, ok := late.Lookup("live/s1"); ok {
		t.Error("late joiner sees unpublished live/s1")
	}
}

func TestDeadMemberDetection(t *testing.T) {
	nodes := startCluster(t, 4, "")
	poll.Until(t, 10*time.Second, "4-node convergence", func() bool {
		for _, n := range nodes {
			if aliveCount(n.Cluster) != 4 {
				return false
			}
		}
		return true
	})
	victim := nodes[3]
	if err := victim.Publish("live/doomed"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "live/doomed everywhere", func() bool {
		for _, n := range nodes[:3] {
			if _, ok := n.Lookup("live/doomed"); !ok {
				return false
			}
		}
		return true
	})
	victim.cancel()
	if err := victim.Close(); err != nil { // no Leave: a crash
		t.Fatal(err)
	}
	d := poll.Until(t, 20*time.Second, "survivors to declare n3 dead", func() bool {
		for _, n := range nodes[:3] {
			m, ok := n.Member("n3")
			if !ok || m.State != StateDead {
				return false
			}
		}
		return true
	})
	t.Logf("dead member declared by all survivors %v after it stopped", d)
	for _, n := range nodes[:3] {
		if e, ok := n.Lookup("live/doomed"); ok {
			t.Errorf("%s still routes live/doomed to %s", n.Name(), e.Node)
		}
		if m, _ := n.Member("n3"); m.Healthy() {
			t.Errorf("%s: dead n3 reported healthy", n.Name())
		}
	}
	poll.Until(t, 5*time.Second, "failed events naming the dropped stream", func() bool {
		for _, n := range nodes[:3] {
			ev, ok := n.events.find(EventFailed, "n3")
			if !ok || len(ev.Streams) != 1 || ev.Streams[0] != "live/doomed" {
				return false
			}
		}
		return true
	})
}

func TestGracefulLeave(t *testing.T) {
	nodes := startCluster(t, 3, "")
	poll.Until(t, 10*time.Second, "3-node convergence", func() bool {
		return aliveCount(nodes[0].Cluster) == 3 && aliveCount(nodes[2].Cluster) == 3
	})
	if err := nodes[2].Publish("live/bye"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "live/bye on n0", func() bool { _, ok := nodes[0].Lookup("live/bye"); return ok })
	start := time.Now()
	if err := nodes[2].Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	d := poll.Until(t, 10*time.Second, "n0 and n1 to see n2 left", func() bool {
		for _, n := range nodes[:2] {
			if m, ok := n.Member("n2"); !ok || m.State != StateLeft {
				return false
			}
		}
		return true
	})
	t.Logf("graceful leave seen by all after %v (%v after Leave returned)", time.Since(start), d)
	if _, ok := nodes[0].Lookup("live/bye"); ok {
		t.Error("n0 still routes live/bye to the node that left")
	}
	poll.Until(t, 5*time.Second, "leave event on n0", func() bool {
		_, ok := nodes[0].events.find(EventLeave, "n2")
		return ok
	})
	if _, ok := nodes[0].events.find(EventFailed, "n2"); ok {
		t.Error("graceful leave reported as a failure")
	}
	if err := nodes[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := nodes[2].Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Close = %v, want ErrClosed", err)
	}
	if err := nodes[2].Publish("live/x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

func TestLoadUpdatesSpread(t *testing.T) {
	nodes := startCluster(t, 2, "")
	poll.Until(t, 10*time.Second, "2-node convergence", func() bool { return aliveCount(nodes[0].Cluster) == 2 })
	want := Load{Streams: 7, MbpsIn: 12.5, MbpsOut: 40}
	nodes[1].SetLoad(want)
	d := poll.Until(t, 5*time.Second, "n0 to see n1's load", func() bool {
		m, _ := nodes[0].Member("n1")
		return m.Meta.Load == want
	})
	t.Logf("load update seen after %v", d)
	if _, ok := nodes[0].events.find(EventUpdate, "n1"); !ok {
		poll.Until(t, 2*time.Second, "update event", func() bool { _, ok := nodes[0].events.find(EventUpdate, "n1"); return ok })
	}
	meta := nodes[1].LocalMeta()
	meta.Addrs.RTMP = "198.51.100.7:1935"
	if err := nodes[1].SetMeta(meta); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "n0 to see n1's new RTMP address", func() bool {
		m, _ := nodes[0].Member("n1")
		return m.Meta.Addrs.RTMP == "198.51.100.7:1935"
	})
	meta.Version = strings.Repeat("v", 600)
	if err := nodes[1].SetMeta(meta); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("SetMeta with a 600-byte version = %v, want ErrMetaTooLarge", err)
	}
}

func TestRejoinWhileAlone(t *testing.T) {
	a := startNode(t, "a", NodeMeta{}, "")
	// b is configured with a as seed but never calls Join: Run retries.
	b := startNode(t, "b", NodeMeta{}, "", a.Addr().String())
	d := poll.Until(t, 10*time.Second, "b to join a on its own", func() bool { return aliveCount(a.Cluster) == 2 })
	t.Logf("rejoin loop joined after %v", d)
	_ = b
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	a, err := New(Config{NodeName: "a", BindAddr: "127.0.0.1", Meta: NodeMeta{Role: RoleEdge}, OnEvent: func(Event) {}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{NodeName: "b", BindAddr: "127.0.0.1", Meta: NodeMeta{Role: RoleEdge}, OnEvent: func(Event) {}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Join([]string{a.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	a.Close()
	poll.Until(t, 10*time.Second, "goroutines to return to the baseline", func() bool {
		return runtime.NumGoroutine() <= before
	})
}
