package rtmp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/testnode"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/rtmp"
)

func start(t *testing.T, hcfg media.HubConfig, rcfg rtmp.Config) *testnode.Node {
	t.Helper()
	return testnode.Start(t, testnode.Config{Name: "server", Hub: hcfg, RTMP: rcfg})
}

// playRead is what one player saw.
type playRead struct {
	name string
	res  testmedia.Result
	err  error
}

// readBoth reads key over RTMP and over HTTP-FLV at the same time, each
// for at most d; the results arrive as the readers finish.
func readBoth(ctx context.Context, n *testnode.Node, key string, d time.Duration) <-chan playRead {
	results := make(chan playRead, 2)
	for _, r := range []struct{ name, url string }{
		{"rtmp", n.RTMPURL(key)},
		{"httpflv", n.FLVURL(key)},
	} {
		go func() {
			res, err := testmedia.Read(ctx, r.url, d)
			results <- playRead{r.name, res, err}
		}()
	}
	return results
}

// checkReads runs check on each player's result in a subtest named after
// its protocol; a failed read fails the subtest.
func checkReads(t *testing.T, results <-chan playRead, check func(t *testing.T, res testmedia.Result)) {
	t.Helper()
	for range cap(results) {
		r := <-results
		t.Run(r.name, func(t *testing.T) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			check(t, r.res)
		})
	}
}

func fastHub() media.HubConfig {
	c := media.DefaultHubConfig()
	c.ReconnectGrace = 300 * time.Millisecond
	return c
}

// TestPublishPlay publishes H.264 + AAC with ffmpeg and reads it back over
// RTMP and HTTP-FLV from the start to the end: every frame arrives, codecs
// and resolution are intact, timestamps increase, nothing fails to decode.
func TestPublishPlay(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n := start(t, fastHub(), rtmp.Config{})
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 6 * time.Second}.Defaults()
	ctx := context.Background()
	pub := testmedia.Publish(t, ctx, src, n.RTMPURL("live/e2e"))
	testmedia.Eventually(t, 10*time.Second, "stream live/e2e to be published", func() bool {
		return n.Hub.Stream("live/e2e") != nil
	})

	results := readBoth(ctx, n, "live/e2e", 20*time.Second)
	checkReads(t, results, func(t *testing.T, res testmedia.Result) {
		if res.VideoCodec != "h264" || res.AudioCodec != "aac" {
			t.Errorf("codecs = %q/%q, want h264/aac", res.VideoCodec, res.AudioCodec)
		}
		if res.Width != src.Width || res.Height != src.Height {
			t.Errorf("resolution = %dx%d, want %dx%d", res.Width, res.Height, src.Width, src.Height)
		}
		if d := res.VideoFrames - src.Frames(); d < -1 || d > 1 {
			t.Errorf("video frames = %d, want %d (+-1)", res.VideoFrames, src.Frames())
		}
		if !res.FirstKey {
			t.Errorf("first video frame is not a keyframe")
		}
		if res.NonMonotonic != 0 {
			t.Errorf("%d video timestamps did not increase", res.NonMonotonic)
		}
		if res.DecodeErrors != "" {
			t.Errorf("decode errors: %s", res.DecodeErrors)
		}
	})
	if err := pub.Wait(10 * time.Second); err != nil {
		t.Errorf("publisher: %v: %s", err, pub.Stderr)
	}
}

// TestSecondPublisherRefused: a second publisher to a live name is refused
// with a clear error and the first keeps publishing.
func TestSecondPublisherRefused(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	n := start(t, fastHub(), rtmp.Config{})
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Duration: 8 * time.Second}
	testmedia.Publish(t, ctx, src, n.RTMPURL("live/busy"))
	testmedia.Eventually(t, 10*time.Second, "first publisher", func() bool { return n.Hub.Stream("live/busy") != nil })
	second := testmedia.Publish(t, ctx, src, n.RTMPURL("live/busy"))
	if err := second.Wait(10 * time.Second); err == nil {
		t.Fatalf("second publisher exited cleanly; want a refusal")
	}
	testmedia.Eventually(t, 5*time.Second, "refusal in the log", func() bool {
		return strings.Contains(n.Logs.String(), "stream is already being published")
	})
	info, ok := n.Hub.Stream("live/busy").Publisher()
	if !ok || info.Protocol != "rtmp" {
		t.Fatalf("first publisher lost: %+v %v", info, ok)
	}
}

// TestBadInput: garbage, a bad handshake, a slowloris client and a stalled
// handshake each cost only their own connection while a stream flows.
func TestBadInput(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n := start(t, fastHub(), rtmp.Config{HandshakeTimeout: 700 * time.Millisecond, ReadTimeout: time.Second})
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Duration: 10 * time.Second}.Defaults()
	testmedia.Publish(t, ctx, src, n.RTMPURL("live/good"))
	testmedia.Eventually(t, 10*time.Second, "good stream", func() bool { return n.Hub.Stream("live/good") != nil })

	addr := n.RTMP.Addr().String()
	cases := []struct {
		name string
		send []byte
		want string // in the log
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("x", 3000)), "rtmp handshake"},
		{"bad version", append([]byte{9}, make([]byte, 1536)...), "rtmp handshake"},
		{"stalled handshake", []byte{3}, "rtmp handshake"},
		{"nothing at all", nil, "rtmp handshake"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.send != nil {
				c.Write(tc.send)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			// closed by the server: EOF, or a reset when our bytes were unread
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("server did not close the connection: %v", err)
			}
		})
	}
	if got := n.RTMP.Refused.Load(); got < uint64(len(cases)) {
		t.Errorf("refused = %d, want >= %d", got, len(cases))
	}
	// the good stream still plays
	res, err := testmedia.Read(ctx, n.RTMPURL("live/good"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoFrames < 25 || res.DecodeErrors != "" {
		t.Errorf("good stream after bad input: %d frames, errors %q", res.VideoFrames, res.DecodeErrors)
	}
	resp, err := http.Get(n.FLVURL("live/missing"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing stream over HTTP-FLV: status %d, want 404", resp.StatusCode)
	}
}
