package srt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

func TestBudgetReserve(t *testing.T) {
	b := NewBudget("srt.max_receive_memory", 100)
	r1, err := b.reserve(60, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.reserve(41, false); err == nil || !strings.Contains(err.Error(), "srt.max_receive_memory") {
		t.Fatalf("reserve beyond the limit: %v, want a refusal naming the key", err)
	}
	r2, err := b.reserve(40, false)
	if err != nil {
		t.Fatalf("reserve up to the limit: %v", err)
	}
	r1()
	r1() // idempotent
	if got := b.Reserved(); got != 40 {
		t.Errorf("reserved %d after one release (twice), want 40", got)
	}
	b.SetLimit(30) // below what is held: held stays, new is refused
	if _, err := b.reserve(1, false); err == nil {
		t.Error("reserve after the limit went below the reserved bytes succeeded")
	}
	r2()
	if _, err := b.reserve(30, false); err != nil {
		t.Errorf("reserve after every release: %v", err)
	}
	var none *Budget
	if rel, err := none.reserve(1<<50, false); err != nil || rel == nil {
		t.Errorf("a nil budget refused: %v", err)
	}
}

func TestDefaultReceiveMemory(t *testing.T) {
	for _, c := range []struct {
		name        string
		ram, cgroup int64
		want        int64
	}{
		{"a quarter of RAM", 8 << 30, 0, 2 << 30},
		{"a lower cgroup limit wins", 8 << 30, 1 << 30, 256 << 20},
		{"a higher cgroup limit does not", 1 << 30, 8 << 30, 256 << 20},
		{"nothing known", 0, 0, 1 << 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := defaultReceiveMemory(c.ram, c.cgroup); got != c.want {
				t.Errorf("got %d, want %d", got, c.want)
			}
		})
	}
	if d := DefaultReceiveMemory(); d <= 0 {
		t.Errorf("DefaultReceiveMemory() = %d on this machine", d)
	}
}

func TestCgroupMemoryMax(t *testing.T) {
	write := func(t *testing.T, p, v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		proc   string
		files  map[string]string
		wanted int64
	}{
		{"v2, own limit", "0::/system.slice/relaymesh.service\n",
			map[string]string{"system.slice/relaymesh.service/memory.max": "536870912\n", "system.slice/memory.max": "max\n"}, 512 << 20},
		{"v2, a parent's lower limit", "0::/a/b\n",
			map[string]string{"a/b/memory.max": "max\n", "a/memory.max": "1073741824\n"}, 1 << 30},
		{"v2 in a container namespace", "0::/\n", map[string]string{"memory.max": "268435456\n"}, 256 << 20},
		{"v2 unlimited", "0::/x\n", map[string]string{"x/memory.max": "max\n"}, 0},
		{"v1", "4:memory:/docker/abc\n0::/\n",
			map[string]string{"memory/docker/abc/memory.limit_in_bytes": "2147483648\n", "memory/memory.limit_in_bytes": "9223372036854771712\n"}, 2 << 30},
		{"no cgroup file", "", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			proc := filepath.Join(dir, "cgroup")
			if c.proc != "" {
				write(t, proc, c.proc)
			}
			for p, v := range c.files {
				write(t, filepath.Join(dir, "fs", p), v)
			}
			if got := cgroupMemoryMax(proc, filepath.Join(dir, "fs")); got != c.wanted {
				t.Errorf("got %d, want %d", got, c.wanted)
			}
		})
	}
}

// TestBudgetConnections: real libsrt callers against a listener whose
// budget holds two publishers. Every accepted connection reserves its
// receive buffer, a handshake beyond the budget is refused with
// RejXOverload and the key in the log, and what a connection reserved
// comes back on every way it can end.
func TestBudgetConnections(t *testing.T) {
	pubBuf := int64(defaultRcvPackets * srtUnit) // no bitrate limit: libsrt's default buffer
	readBuf := int64(minRcvPackets * srtUnit)
	budget := NewBudget("srt.max_receive_memory", 2*pubBuf+readBuf)
	ts := startServer(t, Config{Budget: budget, ReadTimeout: 2 * time.Second, PlayWait: 300 * time.Millisecond,
		Streams: map[string]StreamOptions{"live/secret": {PublishPassphrase: pass32}}}, hubCfg())
	reserved := func(t *testing.T, want int64, what string) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool { return budget.Reserved() == want })
	}
	refused := func(t *testing.T, streamID string) {
		t.Helper()
		_, err := dial(t, ts, streamID, "")
		var rej *libsrt.RejectError
		if !errors.As(err, &rej) || rej.Code != libsrt.RejXOverload {
			t.Fatalf("dial %s beyond the budget: %v, want reject code %d", streamID, err, libsrt.RejXOverload)
		}
		waitFor(t, 5*time.Second, "the refusal naming the key in the log", func() bool {
			return strings.Contains(ts.logs.String(), streamID[strings.IndexByte(streamID, ':')+1:]+": the node's SRT receive memory is taken") &&
				strings.Contains(ts.logs.String(), "srt.max_receive_memory")
		})
	}
	publisher := func(t *testing.T, key string) *libsrt.Conn {
		t.Helper()
		c, err := dial(t, ts, "publish:"+key, "")
		if err != nil {
			t.Fatalf("publish %s: %v", key, err)
		}
		waitFor(t, 5*time.Second, key+" attached", func() bool { return live(ts.hub.Stream(key)) })
		return c
	}

	t.Run("refused by libsrt after the callback", func(t *testing.T) {
		// Decide accepts (and reserves), libsrt then refuses the passphrase
		if _, err := dial(t, ts, "publish:live/secret", "wrong-passphrase-123"); err == nil {
			t.Fatal("wrong passphrase accepted")
		}
		waitFor(t, 5*time.Second, "the refusal in the log", func() bool { return strings.Contains(ts.logs.String(), "wrong passphrase") })
		reserved(t, 0, "the refused handshake's buffer back")
	})

	a := publisher(t, "live/a")
	b := publisher(t, "live/b")
	reserved(t, 2*pubBuf, "two publishers' buffers reserved")
	for _, st := range ts.srv.Stats() {
		if st.ReceiveBufferBytes != pubBuf {
			t.Errorf("stats of %s: receive_buffer_bytes %d, want %d", st.Stream, st.ReceiveBufferBytes, pubBuf)
		}
	}
	refused(t, "publish:live/c")
	reserved(t, 2*pubBuf, "the refusal reserved nothing")

	t.Run("normal close", func(t *testing.T) {
		a.Close()
		reserved(t, pubBuf, "the closed publisher's buffer back")
		a = publisher(t, "live/a2")
		reserved(t, 2*pubBuf, "the new publisher's buffer")
	})
	t.Run("read timeout", func(t *testing.T) {
		// b sends nothing: ReadTimeout ends it
		select {
		case <-b.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the silent publisher was not closed")
		}
		reserved(t, 0, "the silent publisher's buffer back after its read timeout")
	})
	t.Run("refused after accept", func(t *testing.T) {
		// a reader of a stream that does not come within PlayWait is
		// accepted by the handshake, then closed
		c, err := dial(t, ts, "read:live/none", "")
		if err != nil {
			t.Fatalf("reader: %v", err)
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the reader was not closed after PlayWait")
		}
		reserved(t, 0, "the reader's buffer back")
	})
	t.Run("listener close", func(t *testing.T) {
		publisher(t, "live/d")
		reserved(t, pubBuf, "a publisher's buffer")
		ts.srv.Close()
		reserved(t, 0, "every buffer back after the listener closed")
	})
}

// TestBudgetShared: two listeners with one budget (the SRT listener and
// the backbone) draw from it together; a count-only listener (the
// backbone, Config.BudgetCountOnly) is never refused for it, and what it
// holds leaves the other one less.
func TestBudgetShared(t *testing.T) {
	readBuf := int64(minRcvPackets * srtUnit)
	budget := NewBudget("srt.max_receive_memory", 2*readBuf)
	one := startServer(t, Config{Budget: budget, PlayWait: time.Minute}, media.DefaultHubConfig())
	two := startServer(t, Config{Budget: budget, PlayWait: time.Minute}, media.DefaultHubConfig())
	backbone := startServer(t, Config{Budget: budget, BudgetCountOnly: true, PlayWait: time.Minute}, media.DefaultHubConfig())
	if _, err := dial(t, one, "read:live/x", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, two, "read:live/x", ""); err != nil {
		t.Fatal(err)
	}
	var rej *libsrt.RejectError
	if _, err := dial(t, one, "read:live/y", ""); !errors.As(err, &rej) || rej.Code != libsrt.RejXOverload {
		t.Fatalf("a third reader over two listeners sharing a budget of two: %v, want reject code %d", err, libsrt.RejXOverload)
	}
	// the budget is full: the count-only listener still admits, and counts
	for i := range 2 {
		if _, err := dial(t, backbone, "read:live/x", ""); err != nil {
			t.Fatalf("count-only listener, connection %d over a full budget: %v", i+1, err)
		}
	}
	if got, want := budget.Reserved(), 4*readBuf; got != want {
		t.Errorf("reserved %d with one reader on each listener and two on the count-only one, want %d", got, want)
	}
}

// TestBudgetTakeover: an encoder that publishes again from the same host
// replaces its earlier session (ffmpeg both times); the replaced
// session's buffer comes back while the new one keeps publishing.
func TestBudgetTakeover(t *testing.T) {
	needTools(t, "ffmpeg")
	pubBuf := int64(defaultRcvPackets * srtUnit)
	budget := NewBudget("srt.max_receive_memory", 2*pubBuf)
	ts := startServer(t, Config{Budget: budget}, media.DefaultHubConfig())
	first, st, p1 := republish(t, ts, "live/again", 60, nil)
	if err := first.wait(t, 20*time.Second); err == nil {
		t.Error("the replaced ffmpeg ended without an error")
	}
	waitFor(t, 10*time.Second, "only the new session's buffer reserved", func() bool { return budget.Reserved() == pubBuf })
	if p, ok := st.Publisher(); !ok || p.Remote == p1.Remote {
		t.Errorf("the new publisher is gone: %+v %v", p, ok)
	}
}

// TestBudgetTakeoverFull: with the budget full of one publisher that
// froze (SIGSTOP: its connection is not timed out, and would hold its
// buffer until the read timeout), the same host publishing again is
// admitted (its handshake counts the stale session's buffer as free) and
// takes over; the stale session is closed then, so the budget holds one
// buffer again long before that read timeout. Fails with the
// receive-memory refusal when the stale session's buffer is not counted.
func TestBudgetTakeoverFull(t *testing.T) {
	needTools(t, "ffmpeg")
	pubBuf := int64(defaultRcvPackets * srtUnit)
	budget := NewBudget("srt.max_receive_memory", pubBuf)
	ts := startServer(t, Config{Budget: budget, ReadTimeout: time.Minute, PeerIdleTimeout: time.Minute}, media.DefaultHubConfig())
	republish(t, ts, "live/again", 60, func(first *proc) {
		freeze(t)(first)
		if got := budget.Reserved(); got != pubBuf {
			t.Fatalf("reserved %d with one publisher, want %d (the budget full)", got, pubBuf)
		}
	})
	waitFor(t, 10*time.Second, "the stale session closed: one buffer reserved", func() bool {
		return budget.Reserved() == pubBuf && len(ts.srv.Stats()) == 1
	})
	if got := ts.logs.String(); strings.Contains(got, "receive memory is taken") {
		t.Errorf("the same host's republish was refused for the budget:\n%s", got)
	}
}
