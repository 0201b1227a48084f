package hostile

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// CanaryKey is the stream that must keep flowing while hostile input runs.
const CanaryKey = "live/canary"

// Canary is an ffmpeg publisher of a lavfi test source into the agent
// over RTMP and an ffmpeg player that decodes it and reports its frame
// count (-progress) and decode errors (stderr at level error).
type Canary struct {
	pub    *testmedia.Proc
	player *exec.Cmd
	done   chan struct{}

	mu     sync.Mutex
	frames int
	errs   strings.Builder
}

// canarySource is small so that the canary costs little CPU on a shared
// machine; it runs (in real time) far longer than any test.
var canarySource = testmedia.Source{Width: 320, Height: 180, FPS: 25, GOP: 25, Bitrate: "300k",
	Duration: time.Hour, Realtime: true}

// StartCanary publishes the canary and starts its player once the stream
// is up; both are stopped when the test ends.
func StartCanary(t testing.TB, a *Agent) *Canary {
	t.Helper()
	testmedia.Need(t, "ffmpeg", "ffprobe")
	c := &Canary{done: make(chan struct{})}
	c.pub = testmedia.Publish(t, context.Background(), canarySource, a.RTMP(CanaryKey))
	testmedia.Eventually(t, 20*time.Second, "the canary stream published", func() bool {
		var sr struct {
			Streams []struct {
				Name  string `json:"name"`
				Video string `json:"video_codec"`
			} `json:"streams"`
		}
		a.Call(t, "GET", "/v1/streams", nil, &sr)
		for _, s := range sr.Streams {
			if s.Name == CanaryKey && s.Video != "" {
				return true
			}
		}
		return false
	})
	c.player = exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "10000000",
		"-i", a.RTMP(CanaryKey), "-map", "0:v", "-f", "null", "-progress", "pipe:1", "-stats_period", "0.2", "-")
	out, err := c.player.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.player.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.player.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					c.mu.Lock()
					c.frames = n
					c.mu.Unlock()
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		b, _ := io.ReadAll(io.LimitReader(stderr, 1<<20))
		c.mu.Lock()
		c.errs.Write(b)
		c.mu.Unlock()
		io.Copy(io.Discard, stderr)
	}()
	go func() { wg.Wait(); c.player.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.player.Process.Kill()
		<-c.done
	})
	c.WaitAdvance(t, 0, "the canary player's first frames")
	return c
}

// Frames is the player's decoded frame count so far.
func (c *Canary) Frames() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// Errors is what the player printed at level error (decode errors).
func (c *Canary) Errors() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.errs.String())
}

// WaitAdvance waits until the player has decoded at least 25 frames (one
// second of video) more than since, and fails if it stopped or reported
// errors; it returns the new count.
func (c *Canary) WaitAdvance(t testing.TB, since int, what string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := c.Frames()
		if e := c.Errors(); e != "" {
			t.Fatalf("%s: the canary player reported errors: %s", what, e)
		}
		if n >= since+25 {
			return n
		}
		select {
		case <-c.done:
			t.Fatalf("%s: the canary player stopped at frame %d: %s", what, n, c.Errors())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the canary is stuck at frame %d (was %d)", what, n, since)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CheckPlays reads the canary afresh for 2 s and checks a new player gets
// decodable frames.
func CheckPlays(t testing.TB, a *Agent) {
	t.Helper()
	res, err := testmedia.Read(context.Background(), a.RTMP(CanaryKey), 2*time.Second)
	if err != nil {
		t.Fatalf("a new canary player: %v", err)
	}
	if res.VideoFrames < 25 || res.DecodeErrors != "" || !res.FirstKey {
		t.Fatalf("a new canary player got %d frames (want >= 25, first a keyframe: %v), decode errors %q",
			res.VideoFrames, res.FirstKey, res.DecodeErrors)
	}
}

// WatchRSS records the agent's RSS before a run and its peak during it;
// Settle, after the run, polls until RSS is back under a generous bound
// (twice the start plus 64 MiB).
type WatchRSS struct {
	a     *Agent
	pid   int
	start int
	peak  atomic.Int64
	stop  chan struct{}
	done  chan struct{}
}

// StartRSS reads the agent's RSS now and samples it every 100 ms.
func StartRSS(t testing.TB, a *Agent) *WatchRSS {
	t.Helper()
	kb, err := RSS(a.PID())
	if err != nil {
		t.Fatal(err)
	}
	w := &WatchRSS{a: a, pid: a.PID(), start: kb, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if kb, err := RSS(w.pid); err == nil && int64(kb) > w.peak.Load() {
				w.peak.Store(int64(kb))
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *WatchRSS) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Settle waits up to 2 minutes for RSS to come back under the bound. Go
// gives freed memory back to the OS only after a collection, which an
// idle agent runs every 2 minutes; rather than wait for it, Settle asks
// for one through the agent's loopback /debug/pprof/heap?gc=1 every 20 s.
// Memory still held after a collection is live: a leak.
func (w *WatchRSS) Settle(t testing.TB) {
	t.Helper()
	w.halt()
	bound := 2*w.start + 64*1024
	start := time.Now()
	lastGC := time.Time{}
	for {
		kb, err := RSS(w.pid)
		if err != nil {
			t.Fatalf("RSS: %v", err)
		}
		if kb <= bound {
			t.Logf("RSS %d KiB before, peak %d KiB, %d KiB after %s (bound %d KiB)",
				w.start, w.peak.Load(), kb, time.Since(start).Round(time.Second), bound)
			return
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("RSS did not come back: %d KiB before, peak %d KiB, %d KiB now, bound %d KiB; the Go runtime says %s",
				w.start, w.peak.Load(), kb, bound, w.goMem())
		}
		if time.Since(start) > 5*time.Second && time.Since(lastGC) > 20*time.Second {
			if resp, err := http.Get(w.a.API("/debug/pprof/heap?gc=1")); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			lastGC = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// goMem is the Go runtime's view of the agent's memory (from
// /debug/pprof/heap?debug=1), to tell Go heap from C (libsrt) memory.
func (w *WatchRSS) goMem() string {
	resp, err := http.Get(w.a.API("/debug/pprof/heap?debug=1"))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, k := range []string{"# HeapAlloc", "# HeapInuse", "# HeapSys", "# HeapReleased", "# Sys ", "# Stack"} {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.TrimPrefix(l, "# "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// Plateau is the leak check for input that makes libsrt allocate: libsrt
// allocates connection buffers in C, and glibc keeps what libsrt frees in
// its arenas for reuse, so RSS does not come back to where it started
// after a flood of connections (measured: ~375 MiB kept after 100 000
// mutated datagrams with ~350 accepted connections, 26 MiB before). What
// must hold is that the memory is reused: again runs the same input once
// more, and RSS after it must stay within a quarter (plus 32 MiB) of RSS
// after the first run. A leak grows with every run.
//
// Both readings are taken once the run's hostile connections have ended
// (relaymesh_srt_connections back to 0, at the peer idle timeout): read
// while they still held their buffers, the first would be inflated and
// the bound too loose to see a leak.
func (w *WatchRSS) Plateau(t testing.TB, again func()) {
	t.Helper()
	w.halt()
	w.connsEnded(t, "the first run")
	first, err := RSS(w.pid)
	if err != nil {
		t.Fatalf("RSS: %v", err)
	}
	again()
	w.connsEnded(t, "the second run")
	// libsrt and glibc may give memory back a little later still: poll
	// until RSS is back within the bound
	bound := first + first/4 + 32*1024
	start := time.Now()
	for {
		second, err := RSS(w.pid)
		if err != nil {
			t.Fatalf("RSS: %v", err)
		}
		if second <= bound {
			t.Logf("RSS %d KiB before, peak %d KiB, %d KiB after the first run, %d KiB %s after the same input again (bound %d KiB); %s",
				w.start, w.peak.Load(), first, second, time.Since(start).Round(time.Second), bound, w.goMem())
			return
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("RSS grew from %d KiB to %d KiB on the same input again and stayed there for 90 s (bound %d KiB): memory is not reused; %s",
				first, second, bound, w.goMem())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// connsEnded waits (up to 2 minutes) until the agent's /metrics shows no
// open SRT connection, and logs how many there were when it began.
func (w *WatchRSS) connsEnded(t testing.TB, after string) {
	t.Helper()
	n0 := -1
	testmedia.Eventually(t, 2*time.Minute, "the SRT connections of "+after+" to end (relaymesh_srt_connections 0)", func() bool {
		n, err := w.a.SRTConnections()
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		if n0 < 0 {
			n0 = n
		}
		return n == 0
	})
	t.Logf("after %s: %d SRT connections open, waited for them to end", after, n0)
}
