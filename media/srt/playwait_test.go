package srt

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPlayWait: a reader of a stream that is not live waits for it
// (PlayWait) while the hub's OnMissing brings it, as a center's on-demand
// pull does; the reader is a real libsrt caller (ffmpeg). The wait is
// spent after the handshake: libsrt's listen callback must not block.
func TestPlayWait(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	cases := []struct {
		name     string
		playWait time.Duration
		arrives  bool // OnMissing starts a publisher
		wantRead bool // the reader gets the stream
		logWant  []string
	}{
		{"arrives", 8 * time.Second, true, true, nil},
		// libsrt sends no reject code once it accepted: the log must not
		// claim one
		{"never arrives, disconnected after play wait", time.Second, false, false,
			[]string{"no such stream", "accepted, then closed: libsrt sends a caller no reject code after the handshake"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var (
				mu     sync.Mutex
				asked  []string
				pubURL string
			)
			hc := hubCfg()
			hc.OnMissing = func(key string) {
				mu.Lock()
				asked = append(asked, key)
				u := pubURL
				mu.Unlock()
				if c.arrives {
					start(t, "", "ffmpeg", publishArgs(u+"?streamid=publish:"+key, "", "h264", 4)...)
				}
			}
			ts := startServer(t, Config{PlayWait: c.playWait}, hc)
			mu.Lock()
			pubURL = ts.url
			mu.Unlock()

			out := tmp(t, "read.ts")
			began := time.Now()
			rd := start(t, "", "ffmpeg", "-hide_banner", "-v", "error", "-i", ts.url+"?streamid=read:live/w",
				"-t", "2", "-c", "copy", "-f", "mpegts", out)
			err := rd.wait(t, 30*time.Second)
			took := time.Since(began)
			mu.Lock()
			if len(asked) != 1 || asked[0] != "live/w" {
				t.Errorf("OnMissing was asked for %q, want once for live/w", asked)
			}
			mu.Unlock()
			if c.wantRead {
				if err != nil {
					t.Fatalf("reader: %v\n%s", err, rd.stderr.String())
				}
				p := probeFile(t, out)
				if p["video"] == nil || p["video"].codec != "h264" || len(p["video"].pts) < 25 {
					t.Errorf("the reader got %v, want at least 1 s of h264", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("the reader of a stream that never came exited cleanly after %s", took)
			}
			if took < c.playWait {
				t.Errorf("the reader gave up after %s, before PlayWait %s", took, c.playWait)
			}
			for _, w := range c.logWant {
				waitFor(t, 5*time.Second, "the log to say "+w, func() bool {
					return strings.Contains(ts.logs.String(), w)
				})
			}
			if l := ts.logs.String(); strings.Contains(l, "refused after the handshake") {
				t.Errorf("the log names a reject code the caller never got:\n%s", l)
			}
		})
	}
}
