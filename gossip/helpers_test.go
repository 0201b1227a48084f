package gossip

import (

	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testLogger logs to stderr with RELAYMESH_TEST_LOG=1, otherwise nowhere
// (memberlist goroutines may log after a test has returned).
func testLogger() *slog.Logger {
	if os.Getenv("RELAYMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func writeKeyFile(t *testing.T, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testTimings are faster than the defaults; RELAYMESH_TEST_DEFAULT_TIMINGS=1
// runs the tests with the shipped defaults instead (to measure them).
func testTimings() Timings {
	t := DefaultTimings()
	if os.Getenv("RELAYMESH_TEST_DEFAULT_TIMINGS") != "" {
		return t
	}
	t.ProbeInterval = 500 * time.Millisecond
	t.ProbeTimeout = 250 * time.Millisecond
	t.MetaMinInterval = 100 * time.Millisecond
	t.RejoinInterval = 500 * time.Millisecond
	return t
}

// eventLog collects events delivered to OnEvent.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) find(typ EventType, node string) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.Type == typ && ev.Member.Name == node {
			return ev, true
		}
	}
	return Event{}, false
}

type testNode struct {
	*Cluster
	events *eventLog
	cancel context.CancelFunc
	done   chan error
}

// startNode creates a node on 127.0.0.1 with a free port and runs it.
func startNode(t *testing.T, name string, meta NodeMeta, keyFile string, seeds ...string) *testNode {
	t.Helper()
	meta.Name = name
	if meta.Role == "" {
		meta.Role = RoleCenter
	}
	ev := &eventLog{}
	c, err := New(Config{
		NodeName: name,
		BindAddr: "127.0.0.1",
		BindPort: 0,
		KeyFile:  keyFile,
		Meta:     meta,
		Seeds:    seeds,
		Timings:  testTimings(),
		OnEvent:  ev.add,
	}, testLogger().With("node", name))
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{Cluster: c, events: ev, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- c.Run(ctx) }()
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *testNode) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("Run(%s) = %v, want nil", n.Name(), err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Run(%s) did not return after cancel", n.Name())
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close(%s): %v", n.Name(), err)
	}
}

// startCluster starts n nodes joined to the first one.
func startCluster(t *testing.T, n int, keyFile string) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = startNode(t, fmt.Sprintf("n%d", i), NodeMeta{Role: RoleCenter, Site: "fra"}, keyFile)
		if i > 0 {
			if err := nodes[i].Join([]string{nodes[0].Addr().String()}); err != nil {
				t.Fatalf("join n%d: %v", i, err)
			}
		}
	}
	return nodes
}

func aliveCount(c *Cluster) int {
	n := 0
	for _, m := range c.Members() {
		if m.State == StateAlive || m.State == StateSuspect {
			n++
		}
	}
	return n
}
