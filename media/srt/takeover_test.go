package srt

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
)

// TestSameHostPublisherReplacesItsStaleSession: an encoder that froze
// (SIGSTOP: its SRT connection is not timed out yet) and publishes again
// from the same host replaces its own stale session instead of being
// refused as busy; the stream keeps its readers.
func TestSameHostPublisherReplacesItsStaleSession(t *testing.T) {
	needTools(t, "ffmpeg")
	ts := startServer(t, Config{PeerIdleTimeout: 20 * time.Second}, media.DefaultHubConfig())
	url := fmt.Sprintf("%s?streamid=publish:live/again", ts.url)
	first := start(t, "", "ffmpeg", publishArgs(url, "", "", 30)...)
	testmedia.Eventually(t, 10*time.Second, "first publisher live", func() bool {
		st := ts.hub.Stream("live/again")
		return st != nil && st.Codecs().Video != ""
	})
	st := ts.hub.Stream("live/again")
	p1, _ := st.Publisher()
	first.cmd.Process.Signal(syscall.SIGSTOP)
	defer first.cmd.Process.Signal(syscall.SIGCONT)

	start(t, "", "ffmpeg", publishArgs(url, "", "", 30)...)
	testmedia.Eventually(t, 10*time.Second, "the second session from the same host to take over", func() bool {
		p2, ok := st.Publisher()
		return ok && p2.Remote != p1.Remote
	})
	if ts.hub.Stream("live/again") != st {
		t.Errorf("the stream was replaced instead of kept")
	}
	if got := ts.logs.String(); strings.Contains(got, "stream is already being published") {
		t.Errorf("the same host's reconnect was refused as busy:\n%s", got)
	}
}
