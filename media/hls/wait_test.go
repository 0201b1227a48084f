package hls

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// TestWaitLimitsApart: blocking reloads (_HLS_msn) and the other playlist
// requests that wait (here for a first segment that does not come) are
// bounded by MaxBlocked each: a full set of one kind does not refuse the
// other, and a refusal names the kind that is full.
func TestWaitLimitsApart(t *testing.T) {
	m := &gohlslib.Muxer{Variant: gohlslib.MuxerVariantLowLatency, SegmentCount: 7, PartMinDuration: 200 * time.Millisecond,
		Tracks: []*gohlslib.Track{{Codec: &codecs.H264{
			SPS: []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8},
			PPS: []byte{0x68, 0xce, 0x3c, 0x80}}, ClockRate: 90000}}}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close() // releases the goroutines still waiting in gohlslib
	cfg := &Config{MaxBlocked: 2, BlockTimeout: time.Minute}
	mx := &muxer{}
	plain := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/video1_stream.m3u8", nil)
		return r
	}
	reload := func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "/video1_stream.m3u8?_HLS_msn=8&_HLS_part=0", nil)
		return r
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// wait starts n calls that stay blocked in gohlslib
	wait := func(n int, req func() *http.Request) {
		for range n {
			go mx.call(ctx, m, req(), cfg)
		}
	}
	// refused makes one more call: the refusal's message, or "" when it
	// was admitted (it waited until its context ended)
	refused := func(req *http.Request) string {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		rec, status, msg := mx.call(c, m, req, cfg)
		switch status {
		case -1:
			return ""
		case http.StatusServiceUnavailable:
			return msg
		}
		t.Fatalf("%s: status %d %q (%+v), want it to wait or be refused", req.URL, status, msg, rec)
		return ""
	}

	wait(2, plain)
	poll.Until(t, 5*time.Second, "two playlist requests waiting", func() bool { return mx.waiting.Load() == 2 })
	if msg := refused(reload()); msg != "" {
		t.Errorf("a blocking reload beside 2 waiting playlist requests (MaxBlocked 2): refused %q", msg)
	}
	if msg := refused(plain()); !strings.Contains(msg, "too many playlist requests waiting on this stream (2)") {
		t.Errorf("a third playlist request: %q, want it refused naming playlist requests", msg)
	}

	// the admitted reload's client gave up, its goroutine still waits in
	// gohlslib and holds its place: one more fills the reloads' two
	wait(1, reload)
	poll.Until(t, 5*time.Second, "a blocking reload waiting too", func() bool { return mx.waiting.Load() == 3 })
	if msg := refused(reload()); !strings.Contains(msg, "too many blocking playlist reloads waiting on this stream (2)") {
		t.Errorf("a third blocking reload: %q, want it refused naming blocking reloads", msg)
	}
	if r, p := mx.reloads.Load(), mx.playlists.Load(); r != 2 || p != 2 {
		t.Errorf("counted %d blocking reloads and %d playlist requests waiting, want 2 and 2", r, p)
	}
}
