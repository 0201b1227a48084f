package srt

import (
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media"
)

// TestSameHostPublisherReplacesItsStaleSession: an encoder that froze
// (SIGSTOP: its SRT connection is not timed out yet) and publishes again
// from the same host replaces its own stale session instead of being
// refused as busy; the stream keeps its readers.
func TestSameHostPublisherReplacesItsStaleSession(t *testing.T) {
	needTools(t, "ffmpeg")
	ts := startServer(t, Config{PeerIdleTimeout: 20 * time.Second}, media.DefaultHubConfig())
	_, st, _ := republish(t, ts, "live/again", 30, freeze(t))
	if ts.hub.Stream("live/again") != st {
		t.Errorf("the stream was replaced instead of kept")
	}
	if got := ts.logs.String(); strings.Contains(got, "stream is already being published") {
		t.Errorf("the same host's reconnect was refused as busy:\n%s", got)
	}
}
