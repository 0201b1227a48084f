package link

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/unit"
	"github.com/relaymesh/relaymesh/netutil"
)

func TestPull(t *testing.T) {
	needPeers(t)
	cases := []struct {
		name  string
		url   func(n *node) string
		proto string
	}{
		{"srt", func(n *node) string { return n.srtURL + "?streamid=read:live/src" }, "srt-pull"},
		{"rtmp", func(n *node) string { return n.rtmpURL + "/live/src" }, "rtmp-pull"},
		{"http-flv", func(n *node) string { return n.httpURL + "/live/src.flv" }, "httpflv-pull"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := startNode(t, "source", nodeOpts{})
			dst := startNode(t, "puller", nodeOpts{})
			feed(t, src, "live/src", 14*time.Second)
			src.live(t, "live/src", 10*time.Second)
			p := NewPuller(dst.hub, PullConfig{Key: "live/pulled", Next: fixed(Target{URL: c.url(src)})}, testLog(t, "puller"))
			runBG(t, p.Run)
			dst.live(t, "live/pulled", 10*time.Second)
			if info, _ := dst.hub.Stream("live/pulled").Publisher(); info.Protocol != c.proto {
				t.Errorf("publisher protocol %q, want %q", info.Protocol, c.proto)
			}
			checkRead(t, "rtmp read of the pulled stream", dst.rtmpURL+"/live/pulled", 4*time.Second)
			if st := p.Status(); st.State != StateRunning || st.Bytes == 0 || (c.name == "srt") != (st.SRT != nil) {
				t.Errorf("status %+v, want running with bytes (and SRT stats for srt)", st)
			}
		})
	}
}

// TestPullIdleStop: an on-demand pull nobody reads stops IdleStop after
// the start, one that is read keeps running, and stops IdleStop after the
// first sample that saw its reader gone; never a sample sooner. The test
// drives the idle watch's clock: each tick is one sample at a time it names.
func TestPullIdleStop(t *testing.T) {
	needPeers(t)
	src := startNode(t, "source", nodeOpts{})
	dst := startNode(t, "puller", nodeOpts{})
	feed(t, src, "live/src", 14*time.Second)
	src.live(t, "live/src", 10*time.Second)
	const idle = 1500 * time.Millisecond

	p := NewPuller(dst.hub, PullConfig{Key: "live/pulled", IdleStop: idle,
		Next: fixed(Target{URL: src.rtmpURL + "/live/src"})}, testLog(t, "puller"))
	clk := driveIdle(p)
	run := runBG(t, p.Run)
	dst.live(t, "live/pulled", 10*time.Second)
	// a tick is taken only by a running watch: the one after a sample
	// proves that sample did not stop the pull
	for _, at := range []time.Duration{idle / 2, idle - time.Nanosecond, idle} {
		if !clk.tick(run, at) {
			t.Fatalf("the pull stopped before the sample at %s (IdleStop %s)", at, idle)
		}
	}
	testmedia.Eventually(t, 10*time.Second, "the idle pull to stop after the sample at IdleStop", run.ended)
	if err := run.result(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if st := p.Status(); st.State != StateStopped {
		t.Errorf("state %s, want stopped", st.State)
	}

	// with a reader it keeps running past IdleStop, and stops IdleStop
	// after the first sample without it
	p2 := NewPuller(dst.hub, PullConfig{Key: "live/read", IdleStop: idle,
		Next: fixed(Target{URL: src.rtmpURL + "/live/src"})}, testLog(t, "puller2"))
	clk2 := driveIdle(p2)
	run2 := runBG(t, p2.Run)
	dst.live(t, "live/read", 10*time.Second)
	readers := func() int {
		if s := dst.hub.Stream("live/read"); s != nil {
			return s.ReaderCount()
		}
		return 0
	}
	rctx, leave := context.WithCancel(context.Background())
	defer leave()
	reader := exec.CommandContext(rctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", dst.rtmpURL+"/live/read", "-c", "copy", "-f", "null", "-")
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	testmedia.Eventually(t, 10*time.Second, "the reader to attach", func() bool { return readers() > 0 })
	for _, at := range []time.Duration{idle - time.Nanosecond, idle, 5 * idle, 10 * idle} {
		if !clk2.tick(run2, at) {
			t.Fatalf("the pull stopped at the sample at %s while read", at)
		}
	}
	if readers() == 0 {
		t.Fatal("the reader left while the samples were taken (ffmpeg ended early)")
	}
	leave()
	reader.Wait()
	testmedia.Eventually(t, 10*time.Second, "the reader to detach", func() bool { return readers() == 0 })
	// 11*idle is the first sample without the reader
	for _, at := range []time.Duration{11 * idle, 12*idle - time.Nanosecond, 12 * idle} {
		if !clk2.tick(run2, at) {
			t.Fatalf("the pull stopped before the sample at %s (reader gone since the sample at %s)", at, 11*idle)
		}
	}
	testmedia.Eventually(t, 10*time.Second, "the pull to stop IdleStop after its reader left", run2.ended)
	if err := run2.result(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// idleDriver is a pull's idle watch clock driven by the test: now is t0,
// each tick a sample at the time the test gives.
type idleDriver struct {
	t0    time.Time
	ticks chan time.Time
}

func driveIdle(p *Puller) *idleDriver {
	d := &idleDriver{t0: time.Unix(1e9, 0), ticks: make(chan time.Time)}
	p.idleClock = clock{
		now:    func() time.Time { return d.t0 },
		ticker: func(time.Duration) (<-chan time.Time, func()) { return d.ticks, func() {} },
	}
	return d
}

// tick has the watch sample at t0+at; false when the run ended instead.
func (d *idleDriver) tick(run *bg, at time.Duration) bool {
	select {
	case d.ticks <- d.t0.Add(at):
		return true
	case <-run.done:
		return false
	}
}

// TestPullSourceRestart: the source's publisher goes away and comes back;
// the puller reconnects and local readers get the new stream.
func TestPullSourceRestart(t *testing.T) {
	needPeers(t)
	src := startNode(t, "source", nodeOpts{grace: -1})
	dst := startNode(t, "puller", nodeOpts{grace: 10 * time.Second})
	pub := feed(t, src, "live/src", 4*time.Second)
	src.live(t, "live/src", 10*time.Second)
	p := NewPuller(dst.hub, PullConfig{Key: "live/pulled", MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second,
		Next: fixed(Target{URL: src.srtURL + "?streamid=read:live/src"})}, testLog(t, "puller"))
	runBG(t, p.Run)
	dst.live(t, "live/pulled", 10*time.Second)
	if err := pub.Wait(15 * time.Second); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, pub.Stderr)
	}
	testmedia.Eventually(t, 10*time.Second, "the puller to notice the source left", func() bool { return p.Status().State != StateRunning })
	feed(t, src, "live/src", 12*time.Second)
	testmedia.Eventually(t, 15*time.Second, "the puller to run again", func() bool {
		st := p.Status()
		return st.State == StateRunning && st.Reconnects >= 1
	})
	st := p.Status()
	t.Logf("status after the restart: %+v", st)
	if st.LastError == "" {
		t.Errorf("no last error recorded for the lost source")
	}
	// Total spans both connections, Session only the current one; the SRT
	// counters are sampled once a second.
	testmedia.Eventually(t, 5*time.Second, "the second session's counters", func() bool {
		st = p.Status()
		return st.Session.PacketsRecv > 0
	})
	if st.Sessions != 2 || st.Total.Bytes <= st.Session.Bytes || st.Total.PacketsRecv <= st.Session.PacketsRecv {
		t.Errorf("counters after a reconnect: %d sessions (want 2), session %+v, total %+v", st.Sessions, st.Session, st.Total)
	}
	for name, c := range map[string]Counters{"session": st.Session, "total": st.Total} {
		// IPv4+UDP+SRT headers: 44 bytes per packet
		if want := c.Bytes + 44*c.PacketsRecv; c.WireBytes < want {
			t.Errorf("%s: %d wire bytes for %d media bytes in %d packets: fewer than payload plus headers (%d)", name, c.WireBytes, c.Bytes, c.PacketsRecv, want)
		}
	}
	checkRead(t, "reader after the source restart", dst.rtmpURL+"/live/pulled", 3*time.Second)
}

// garbageServer accepts TCP connections and writes random bytes.
func garbageServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 8192)
			rng.Read(b)
			c.SetDeadline(time.Now().Add(2 * time.Second))
			c.Write(b)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestPullBadInput(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!DOCTYPE html><html><body>Welcome to nginx!</body></html>")
	}))
	defer html.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	badFLV := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/x-flv")
		w.Write([]byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0, 9, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x17, 1, 0, 0, 0, 0, 0, 0, 99})
	}))
	defer badFLV.Close()
	garbage := garbageServer(t)
	cases := []struct {
		name, url, want string
	}{
		{"rtmp garbage", "rtmp://" + garbage + "/live/x", "rtmp handshake"},
		{"http html", html.URL + "/live/x.flv", "not FLV"},
		{"http 404", notFound.URL + "/live/x.flv", "404"},
		{"flv bad tag size", badFLV.URL + "/live/x.flv", "PreviousTagSize"},
		{"srt nobody", "srt://127.0.0.1:9?streamid=read:live/x", "srt connect"},
		{"srt no streamid", "srt://127.0.0.1:9", "no streamid"},
		{"rtmp refused", "rtmp://127.0.0.1:9/live/x", "connection refused"},
		{"bad scheme", "ftp://example.com/x", "unsupported URL scheme"},
	}
	hub := startNode(t, "hub", nodeOpts{}).hub
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var states []State
			p := NewPuller(hub, PullConfig{Key: "live/bad", MinBackoff: 100 * time.Millisecond, ReadTimeout: time.Second,
				Next:    fixed(Target{URL: c.url}),
				OnState: func(s Status) { mu.Lock(); states = append(states, s.State); mu.Unlock() },
			}, testLog(t, "puller"))
			runBG(t, p.Run)
			testmedia.Eventually(t, 8*time.Second, "a backoff with an error", func() bool {
				st := p.Status()
				return st.State == StateBackoff && st.LastError != "" && st.Reconnects >= 1
			})
			st := p.Status()
			t.Logf("last error: %s", st.LastError)
			if !strings.Contains(st.LastError, c.want) {
				t.Errorf("last error %q, want it to mention %q", st.LastError, c.want)
			}
			if hub.Stream("live/bad") != nil {
				t.Errorf("a failed source made the stream live")
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range states {
				if s == StateRunning {
					t.Errorf("states %v: a bad source must never run", states)
					break
				}
			}
		})
	}
}

// TestPullPolicy: with an outbound policy every protocol's dial is
// checked on the resolved address, names included; an HTTP error answer
// is not quoted.
func TestPullPolicy(t *testing.T) {
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "INTERNAL-SECRET")
	}))
	defer secret.Close()
	_, port, _ := net.SplitHostPort(secret.Listener.Addr().String())
	allowAll := &netutil.FetchPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
	cases := []struct {
		name, url string
		policy    *netutil.FetchPolicy
		want      string
	}{
		{"rtmp loopback", "rtmp://127.0.0.1:9/live/x", &netutil.FetchPolicy{}, "refused by the outbound fetch policy"},
		{"rtmp by name", "rtmp://localhost:9/live/x", &netutil.FetchPolicy{}, "refused by the outbound fetch policy"},
		{"srt loopback", "srt://127.0.0.1:9?streamid=read:live/x", &netutil.FetchPolicy{}, "refused by the outbound fetch policy"},
		{"http-flv loopback", secret.URL + "/live/x.flv", &netutil.FetchPolicy{}, "refused by the outbound fetch policy"},
		{"http-flv allowed, error not quoted", "http://localhost:" + port + "/live/x.flv", allowAll, "HTTP 403"},
	}
	hub := startNode(t, "hub", nodeOpts{}).hub
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPuller(hub, PullConfig{Key: "live/policy", MinBackoff: 100 * time.Millisecond, ReadTimeout: time.Second,
				Next: fixed(Target{URL: c.url, Policy: c.policy})}, testLog(t, "puller"))
			runBG(t, p.Run)
			testmedia.Eventually(t, 8*time.Second, "a backoff with an error", func() bool {
				st := p.Status()
				return st.State == StateBackoff && st.LastError != ""
			})
			st := p.Status()
			if !strings.Contains(st.LastError, c.want) || strings.Contains(st.LastError, "INTERNAL-SECRET") {
				t.Errorf("last error %q, want it to mention %q and not quote the answer", st.LastError, c.want)
			}
		})
	}
}

// TestPushPolicy: a push's RTMP and SRT dials pass the outbound policy on
// the resolved address (SRT: the address it then dials).
func TestPushPolicy(t *testing.T) {
	needPeers(t)
	a := startNode(t, "a", nodeOpts{})
	feed(t, a, "live/src", 30*time.Second)
	a.live(t, "live/src", 10*time.Second)
	for _, url := range []string{"rtmp://localhost:9/live/x", "srt://127.0.0.1:9?streamid=publish:live/x"} {
		t.Run(url, func(t *testing.T) {
			p := NewPusher(a.hub, PushConfig{Key: "live/src", MinBackoff: 100 * time.Millisecond,
				Next: fixed(Target{URL: url, Policy: &netutil.FetchPolicy{}})}, testLog(t, "pusher"))
			runBG(t, p.Run)
			testmedia.Eventually(t, 8*time.Second, "a backoff with an error", func() bool {
				st := p.Status()
				return st.State == StateBackoff && st.LastError != ""
			})
			if st := p.Status(); !strings.Contains(st.LastError, "refused by the outbound fetch policy") {
				t.Errorf("last error %q, want the policy's refusal", st.LastError)
			}
		})
	}
}

// TestPullSRTStreamEnd: an SRT pull (a center's on-demand pull of another
// center's stream) delivers the stream to its end: a player of the pulled
// stream, there before the publisher, gets every video and audio frame
// ffmpeg published to the source node (counted by timestamp), the last
// ones included.
func TestPullSRTStreamEnd(t *testing.T) {
	needPeers(t)
	src := startNode(t, "source", nodeOpts{grace: -1, srt: srt.Config{PlayWait: 20 * time.Second}})
	dst := startNode(t, "puller", nodeOpts{grace: -1})
	file := filepath.Join(t.TempDir(), "in.flv")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-shortest", "-f", "flv", file).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	sent, err := testmedia.Analyze(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPuller(dst.hub, PullConfig{Key: "live/pulled", MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second,
		Next: fixed(Target{URL: src.srtURL + "?streamid=read:live/src"})}, testLog(t, "puller"))
	runBG(t, p.Run)
	// the puller waits on the source's SRT listener for the stream (its
	// PlayWait): it reads from the publisher's first packet
	testmedia.Eventually(t, 10*time.Second, "the puller to wait on the source", func() bool {
		return len(src.srt.Stats()) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type count struct{ video, audio map[int64]bool }
	play := func(h *media.Hub, key string, format media.Format) chan count {
		got := make(chan count, 1)
		go func() {
			c := count{video: map[int64]bool{}, audio: map[int64]bool{}}
			defer func() { got <- c }()
			rd, err := h.Subscribe(ctx, key, media.SubscribeOptions{Wait: 50 * time.Second, Format: format})
			if err != nil {
				return
			}
			defer rd.Close()
			for {
				pkts, err := rd.Next(ctx, nil)
				for _, pk := range pkts {
					switch {
					case pk.Header:
					case pk.Kind == unit.KindVideo && !sequenceEnd(pk):
						c.video[pk.Time] = true
					case pk.Kind == unit.KindAudio:
						c.audio[pk.Time] = true
					}
				}
				if err != nil {
					return
				}
			}
		}()
		return got
	}
	got := play(dst.hub, "live/pulled", media.FormatFLV)
	gotSrc := play(src.hub, "live/src", media.FormatFLV)
	pub := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re", "-i", file, "-c", "copy", "-f", "flv", src.rtmpURL+"/live/src")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("publish: %v: %s", err, out)
	}
	var c count
	select {
	case c = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the pulled stream did not end after the source's")
	}
	cs := <-gotSrc
	t.Logf("source player: %d %d (audio %s, video %s)", len(cs.video), len(cs.audio), span(cs.audio), span(cs.video))
	t.Logf("published %d video and %d audio frames; the player of the pull got %d and %d (audio %s, video %s)", sent.VideoFrames, sent.AudioFrames, len(c.video), len(c.audio), span(c.audio), span(c.video))
	// all video; audio from the pull's first audio frame on as the source's
	// player got it (the pull's player, which starts at the first video
	// keyframe, misses the audio the TS demuxer emits before it: the
	// keyframe comes out when the next video frame starts)
	if len(c.video) != sent.VideoFrames {
		t.Errorf("the player of the pull got %d of %d video frames", len(c.video), sent.VideoFrames)
	}
	first := int64(1 << 62)
	for ts := range c.audio {
		first = min(first, ts)
	}
	var missing []int64
	for ts := range cs.audio {
		if ts >= first && !c.audio[ts] {
			missing = append(missing, ts)
		}
	}
	if len(missing) > 0 || len(c.audio) == 0 {
		t.Errorf("the player of the pull misses %d audio frames the source's player got after its first (%d ms): %v", len(missing), first, missing)
	}
}

// sequenceEnd reports whether pk is an FLV end of sequence (no frame).
func sequenceEnd(pk *unit.Packet) bool {
	v, ok := unit.ParseVideoTag(pk.Payload)
	return ok && v.EOS
}

// span is the first and last of the timestamps in ts.
func span(ts map[int64]bool) string {
	lo, hi := int64(1<<62), int64(-1<<62)
	for t := range ts {
		lo, hi = min(lo, t), max(hi, t)
	}
	return fmt.Sprintf("%d-%d ms", lo, hi)
}

// TestPullOnEnd: OnEnd gets the error each failed session ended with,
// before the pull asks Next again (the center marks a dead host there even
// when a standby's take-over cancels the pull before its next Next).
func TestPullOnEnd(t *testing.T) {
	hub := media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
	defer hub.Close()
	// a UDP port nothing listens on: the dial fails
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	var mu sync.Mutex
	var ends, lastErrs []error
	p := NewPuller(hub, PullConfig{Key: "live/ends", MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Next: func(attempt int, lastErr error) (Target, error) {
			mu.Lock()
			defer mu.Unlock()
			if attempt > 0 {
				lastErrs = append(lastErrs, lastErr)
			}
			return Target{URL: "srt://" + addr + "?streamid=read:live/x", ConnectTimeout: 200 * time.Millisecond}, nil
		},
		OnEnd: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			ends = append(ends, err)
		}}, testLog(t, "puller"))
	runBG(t, p.Run)
	poll.Until(t, 20*time.Second, "two sessions end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lastErrs) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	for i, e := range lastErrs[:2] {
		if i >= len(ends) || ends[i] == nil || ends[i] != e {
			t.Errorf("session %d: OnEnd got %v, Next then %v; want the same error, before", i, ends, e)
		}
	}
}
