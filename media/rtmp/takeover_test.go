package rtmp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/rtmp"
)

// TestTakeover: with takeover on, a second publisher replaces the first,
// which is disconnected with a logged reason, while a player started
// before the takeover keeps playing both on one timeline.
func TestTakeover(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	hc := fastHub()
	hc.Takeover = true
	n := start(t, hc, rtmp.Config{})
	ctx := context.Background()
	first := testmedia.Publish(t, ctx, testmedia.Source{Realtime: true, Duration: 30 * time.Second, GOP: 25, Audio: true}, n.RTMPURL("live/tk"))
	testmedia.Eventually(t, 10*time.Second, "first publisher", func() bool { return n.Hub.Stream("live/tk") != nil })
	stream := n.Hub.Stream("live/tk")

	type read struct {
		res testmedia.Result
		err error
	}
	results := make(chan read, 1)
	go func() {
		res, err := testmedia.Read(ctx, n.RTMPURL("live/tk"), 20*time.Second)
		results <- read{res, err}
	}()
	testmedia.Eventually(t, 10*time.Second, "the player", func() bool { return stream.ReaderCount() == 1 })
	// the player must have some of the first publisher before the second
	// one comes: about a second of it at 800 kbit/s
	testmedia.Eventually(t, 10*time.Second, "media of the first publisher at the player", func() bool { return stream.BytesOut() >= 100_000 })

	src := testmedia.Source{Realtime: true, Duration: 3 * time.Second, GOP: 25, Audio: true}.Defaults()
	second := testmedia.Publish(t, ctx, src, n.RTMPURL("live/tk"))
	if err := first.Wait(10 * time.Second); err == nil {
		t.Errorf("first publisher exited cleanly; want it disconnected")
	} else if strings.Contains(err.Error(), "still running") {
		t.Fatalf("first publisher still connected after the takeover")
	}
	testmedia.Eventually(t, 5*time.Second, "the takeover reason in the log", func() bool {
		return strings.Contains(n.Logs.String(), "another publisher took over the stream")
	})
	if err := second.Wait(15 * time.Second); err != nil {
		t.Fatalf("second publisher: %v: %s", err, second.Stderr)
	}
	if n.Hub.Stream("live/tk") != stream {
		t.Errorf("takeover made a new stream; players were dropped")
	}
	r := <-results
	if r.err != nil {
		t.Fatal(r.err)
	}
	// some of the first publisher, then all of the second
	if r.res.VideoFrames <= src.Frames() {
		t.Errorf("video frames = %d, want more than the second publisher's %d", r.res.VideoFrames, src.Frames())
	}
	if r.res.NonMonotonic != 0 {
		t.Errorf("%d video timestamps did not increase across the takeover", r.res.NonMonotonic)
	}
	for _, l := range testmedia.Lines(r.res.DecodeErrors) {
		if !strings.HasPrefix(l, "[matroska,webm @") { // see TestPublisherReconnect
			t.Errorf("decode error: %s", l)
		}
	}
}
