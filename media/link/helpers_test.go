package link

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/testnode"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/srt"
)

// testLog returns a logger whose output is shown when the test fails.
func testLog(t *testing.T, name string) *slog.Logger {
	log, _ := testmedia.Logger(t, name)
	return log
}

// node is a hub with RTMP, SRT and HTTP-FLV listeners on loopback.
type node struct {
	tn      *testnode.Node
	hub     *media.Hub
	srt     *srt.Server
	rtmpURL string // rtmp://127.0.0.1:port
	srtURL  string // srt://127.0.0.1:port
	httpURL string // http://127.0.0.1:port
}

type nodeOpts struct {
	srt   srt.Config
	grace time.Duration // hub reconnect grace (0 = default 5s, <0 = none)
}

func startNode(t *testing.T, name string, o nodeOpts) *node {
	t.Helper()
	hc := media.DefaultHubConfig()
	switch {
	case o.grace > 0:
		hc.ReconnectGrace = o.grace
	case o.grace < 0:
		hc.ReconnectGrace = 0
	}
	n := testnode.Start(t, testnode.Config{
		Name: name,
		Hub:  hc,
		RTMP: rtmp.Config{PlayWait: 5 * time.Second},
		FLV:  httpflv.Config{PlayWait: 5 * time.Second},
		SRT:  &o.srt,
	})
	return &node{tn: n, hub: n.Hub, srt: n.SRT, rtmpURL: n.RTMPBase(), srtURL: n.SRTBase(), httpURL: n.FLVBase()}
}

// killSRT closes the node's SRT listener and its connections.
func (n *node) killSRT() { n.tn.KillSRT() }

// live waits until key carries H.264 and AAC.
func (n *node) live(t *testing.T, key string, d time.Duration) {
	t.Helper()
	testmedia.Eventually(t, d, key+" to be live with video and audio", func() bool {
		s := n.hub.Stream(key)
		if s == nil {
			return false
		}
		_, pub := s.Publisher()
		c := s.Codecs()
		return pub && c.Video != "" && c.Audio != ""
	})
}

// feed publishes a realtime H.264 + AAC source to n's RTMP server as key.
func feed(t *testing.T, n *node, key string, d time.Duration) *testmedia.Proc {
	t.Helper()
	src := testmedia.Source{Audio: true, Realtime: true, Duration: d, GOP: 25}
	return testmedia.Publish(t, context.Background(), src, n.rtmpURL+"/"+key)
}

func needPeers(t *testing.T, bins ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real peers skipped in -short mode")
	}
	testmedia.Need(t, append([]string{"ffmpeg", "ffprobe"}, bins...)...)
}

// checkRead reads url for d and checks what a viewer checks.
func checkRead(t *testing.T, what, url string, d time.Duration) testmedia.Result {
	t.Helper()
	res, err := testmedia.Read(context.Background(), url, d)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: %+v", what, res)
	if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.Width != 640 || res.Height != 360 {
		t.Errorf("%s: got %s %dx%d + %q, want h264 640x360 + aac", what, res.VideoCodec, res.Width, res.Height, res.AudioCodec)
	}
	// 25 fps: allow for the reader's start-up and the GOP it joins in
	want := int(d.Seconds() * 25)
	if res.VideoFrames < want*6/10 || res.VideoFrames > want+30 {
		t.Errorf("%s: %d video frames in %s, want about %d", what, res.VideoFrames, d, want)
	}
	if res.AudioFrames < int(d.Seconds()*47*6/10) {
		t.Errorf("%s: only %d audio frames in %s", what, res.AudioFrames, d)
	}
	if !res.FirstKey {
		t.Errorf("%s: the stream does not start on a keyframe", what)
	}
	if res.NonMonotonic > 0 {
		t.Errorf("%s: %d non-monotonic video timestamps", what, res.NonMonotonic)
	}
	if res.DecodeErrors != "" {
		t.Errorf("%s: decode errors:\n%s", what, res.DecodeErrors)
	}
	return res
}

// fixed returns a Next that always gives t.
func fixed(t Target) func(int, error) (Target, error) {
	return func(int, error) (Target, error) { return t, nil }
}

// startNginx runs nginx-rtmp on a free loopback port and returns its rtmp:// base.
func startNginx(t *testing.T) string {
	return testmedia.StartNginx(t, "").URL()
}

// bg is a Run in the background.
type bg struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	seen   bool // the test checked err itself
}

// runBG runs f in the background; it is stopped when the test ends.
func runBG(t *testing.T, f func(context.Context) error) *bg {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bg{cancel: cancel, done: make(chan struct{})}
	go func() { b.err = f(ctx); close(b.done) }()
	t.Cleanup(func() {
		if err := b.stop(); err != nil && !b.seen {
			t.Errorf("Run: %v", err)
		}
	})
	return b
}

// stop cancels the run and returns its error.
func (b *bg) stop() error {
	b.cancel()
	select {
	case <-b.done:
		return b.err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("Run did not return within 10s of cancel")
	}
}

// result returns Run's error once it returned; the test owns the check.
func (b *bg) result() error {
	<-b.done
	b.seen = true
	return b.err
}

// ended reports whether Run returned.
func (b *bg) ended() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}
