package link

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/unit"
)

const pass = "relaymesh-relay-secret"

func TestPushSRT(t *testing.T) {
	needPeers(t)
	cases := []struct {
		name   string
		srt    srt.Config
		target Target
	}{
		{"plain", srt.Config{}, Target{}},
		{"aes-256", srt.Config{PublishPassphrase: pass}, Target{Passphrase: pass, PBKeyLen: 32}},
		{"aes-128 dscp", srt.Config{PublishPassphrase: pass}, Target{Passphrase: pass, DSCP: 46, Latency: 200 * time.Millisecond}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := startNode(t, "source", nodeOpts{})
			b := startNode(t, "target", nodeOpts{srt: c.srt})
			feed(t, a, "live/src", 14*time.Second)
			a.live(t, "live/src", 10*time.Second)
			tg := c.target
			tg.URL = b.srtURL + "?streamid=publish:live/dst"
			p := NewPusher(a.hub, PushConfig{Key: "live/src", Next: fixed(tg)}, testLog(t, "pusher"))
			runBG(t, p.Run)
			b.live(t, "live/dst", 10*time.Second)
			checkRead(t, "srt read of the pushed stream", b.srtURL+"?streamid=read:live/dst", 4*time.Second)
			st := p.Status()
			t.Logf("status: %+v srt: %+v", st, st.SRT)
			if st.State != StateRunning || st.Bytes == 0 || st.SRT == nil || st.SRT.PacketsSent == 0 {
				t.Errorf("status %+v, want running with bytes and SRT stats", st)
			}
			if c.target.Passphrase != "" && (!st.SRT.Encrypted || strings.Contains(st.Target, pass)) {
				t.Errorf("status %+v: want encrypted, passphrase not shown", st)
			}
		})
	}
}

func TestPushRTMP(t *testing.T) {
	needPeers(t)
	cases := []struct {
		name string
		base func(t *testing.T) string
	}{
		{"nginx-rtmp", startNginx},
		{"relaymesh", func(t *testing.T) string { return startNode(t, "target", nodeOpts{}).rtmpURL }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := c.base(t)
			a := startNode(t, "source", nodeOpts{})
			feed(t, a, "live/src", 14*time.Second)
			a.live(t, "live/src", 10*time.Second)
			// let the source's timeline run past 3 s, so that the rebase shows
			srcNow := sourceClock(t, a, "live/src")
			testmedia.Eventually(t, 10*time.Second, "the source's timeline past 3s", func() bool { return srcNow() >= 3000 })
			p := NewPusher(a.hub, PushConfig{Key: "live/src", Next: fixed(Target{URL: base + "/live/dst?token=s3cret"})}, testLog(t, "pusher"))
			runBG(t, p.Run)
			testmedia.Eventually(t, 10*time.Second, "the pusher to run", func() bool { return p.Status().State == StateRunning })
			// each connection starts its timeline near 0, as a fresh
			// encoder: the target's timeline stays the 3 s (or more) the
			// source had run before the push behind the source's, however
			// late the player joins; unrebased it would be within a GOP (1 s)
			dts := firstDTS(t, base+"/live/dst")
			if src := float64(srcNow()) / 1000; dts < 0 || dts > src-2.5 {
				t.Errorf("the target's first video dts is %.3fs with the source's timeline at %.3fs, want the connection's timeline to start near 0 (the source's was past 3s)", dts, src)
			}
			checkRead(t, "rtmp read from "+c.name, base+"/live/dst", 4*time.Second)
			st := p.Status()
			if st.Bytes == 0 || strings.Contains(st.Target, "s3cret") {
				t.Errorf("status %+v: want bytes and the token hidden", st)
			}
		})
	}
}

// TestPushFailover pushes to A, kills A's SRT listener mid-stream and
// expects the pusher to move to B, which must get a decodable stream.
func TestPushFailover(t *testing.T) {
	needPeers(t)
	src := startNode(t, "source", nodeOpts{})
	ta := startNode(t, "A", nodeOpts{})
	tb := startNode(t, "B", nodeOpts{})
	feed(t, src, "live/src", 16*time.Second)
	src.live(t, "live/src", 10*time.Second)

	var mu sync.Mutex
	var calls []string
	var leftRunning time.Time
	next := func(attempt int, lastErr error) (Target, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, errString(lastErr))
		if attempt == 0 {
			return Target{URL: ta.srtURL + "?streamid=publish:live/dst", PeerIdleTimeout: time.Second}, nil
		}
		return Target{URL: tb.srtURL + "?streamid=publish:live/dst", PeerIdleTimeout: time.Second}, nil
	}
	onState := func(s Status) {
		mu.Lock()
		defer mu.Unlock()
		if s.State != StateRunning && leftRunning.IsZero() && len(calls) == 1 && s.LastError != "" {
			leftRunning = time.Now()
		}
	}
	p := NewPusher(src.hub, PushConfig{Key: "live/src", Next: next, OnState: onState}, testLog(t, "pusher"))
	runBG(t, p.Run)
	ta.live(t, "live/dst", 10*time.Second)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	ta.killSRT()
	tb.live(t, "live/dst", 10*time.Second)
	liveB := time.Now()
	mu.Lock()
	detected := leftRunning
	nc := append([]string(nil), calls...)
	mu.Unlock()
	if detected.IsZero() {
		t.Fatalf("the pusher never reported leaving the running state; Next calls: %q", nc)
	}
	t.Logf("failover: detected %s after the kill, B live %s after detection (%s after the kill)",
		detected.Sub(killed).Round(time.Millisecond), liveB.Sub(detected).Round(time.Millisecond), liveB.Sub(killed).Round(time.Millisecond))
	if len(nc) < 2 || nc[1] == "" {
		t.Errorf("Next calls (last errors) %q: want the second call to carry A's error", nc)
	}
	st := p.Status()
	if st.Reconnects < 1 || !strings.Contains(st.Target, tb.srt.Addr().String()) {
		t.Errorf("status %+v: want a reconnect to B", st)
	}
	checkRead(t, "B's reader", tb.rtmpURL+"/live/dst", 4*time.Second)
}

// firstDTS returns the first video packet's dts (seconds) a reader of url sees.
// sourceClock follows key on n's hub with a reader of its own: the latest
// decode time (ms on the stream's timeline) it has seen.
func sourceClock(t *testing.T, n *node, key string) func() int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := n.hub.Subscribe(ctx, key, media.SubscribeOptions{})
	if err != nil {
		cancel()
		t.Fatalf("subscribe %s: %v", key, err)
	}
	var latest atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]*unit.Packet, 0, 64)
		for {
			var err error
			if buf, err = r.Next(ctx, buf[:0]); err != nil {
				return
			}
			for _, pk := range buf {
				if pk.Time > latest.Load() {
					latest.Store(pk.Time)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); r.Close(); <-done })
	return latest.Load
}

func firstDTS(t *testing.T, url string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "8000000", "-select_streams", "v", "-read_intervals", "%+#1",
		"-show_entries", "packet=dts_time", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	f := strings.Fields(strings.ReplaceAll(string(out), ",", " "))
	if len(f) == 0 {
		t.Fatalf("ffprobe %s: no packets", url)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("ffprobe %s: %q", url, out)
	}
	t.Logf("first video dts at %s: %.3fs", url, v)
	return v
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPushStreamEnds(t *testing.T) {
	needPeers(t)
	a := startNode(t, "source", nodeOpts{grace: -1})
	b := startNode(t, "target", nodeOpts{})
	pub := feed(t, a, "live/src", 3*time.Second)
	a.live(t, "live/src", 10*time.Second)
	p := NewPusher(a.hub, PushConfig{Key: "live/src", Next: fixed(Target{URL: b.rtmpURL + "/live/dst"})}, testLog(t, "pusher"))
	run := runBG(t, p.Run)
	if err := pub.Wait(15 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, pub.Stderr)
	}
	testmedia.Eventually(t, 10*time.Second, "the non-persistent pusher to return at the stream's end", run.ended)
	if err := run.result(); err != nil {
		t.Errorf("Run = %v, want nil at the end of the stream", err)
	}
	if st := p.Status(); st.State != StateStopped {
		t.Errorf("state %s, want stopped", st.State)
	}
}

func TestPushNoStream(t *testing.T) {
	a := startNode(t, "source", nodeOpts{})
	p := NewPusher(a.hub, PushConfig{Key: "live/none", StartWait: 200 * time.Millisecond,
		Next: fixed(Target{URL: "rtmp://127.0.0.1:1/live/x"})}, testLog(t, "pusher"))
	run := runBG(t, p.Run)
	testmedia.Eventually(t, 5*time.Second, "Run to give up", run.ended)
	if err := run.result(); err == nil || !strings.Contains(err.Error(), "no such stream") {
		t.Errorf("Run = %v, want no such stream", err)
	}
}

func TestPushNextStop(t *testing.T) {
	a := startNode(t, "source", nodeOpts{})
	var attempts []int
	next := func(attempt int, lastErr error) (Target, error) {
		attempts = append(attempts, attempt)
		if attempt >= 2 {
			return Target{}, ErrStop
		}
		return Target{}, errors.New("no center available")
	}
	p := NewPusher(a.hub, PushConfig{Key: "live/src", Next: next, MinBackoff: 10 * time.Millisecond}, testLog(t, "pusher"))
	run := runBG(t, p.Run)
	testmedia.Eventually(t, 5*time.Second, "Run to stop on ErrStop", run.ended)
	if err := run.result(); err != nil || len(attempts) != 3 {
		t.Errorf("Run = %v after attempts %v; want nil after 0,1,2", err, attempts)
	}
}
