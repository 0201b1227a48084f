package agent_test

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestHLSAbandonedReloadIdle: a player asks for the segment after the
// current one of a stream whose keyframes come at 0, 1, 2, 3 s and then
// every 60 s (a blocking reload that waits for the next keyframe) and
// gives up after 2 s; with nobody asking any more the
// muxer closes after idle_timeout. The request's goroutine, still
// waiting inside gohlslib, used to count as a reader in flight and kept
// the muxer alive until the segment came.
func TestHLSAbandonedReloadIdle(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "[hls]\nidle_timeout = \"1s\"\n")
	pub := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "180",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "1500", "-sc_threshold", "0",
		"-force_key_frames", "expr:lt(n_forced,4)*gte(t,n_forced)", "-pix_fmt", "yuv420p",
		"-f", "flv", a.rtmp("live/longgop"))
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Process.Kill(); pub.Wait() })
	waitStreams(t, a, "publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	media := a.hls("live/longgop", "video1_stream.m3u8")
	var pl string
	var next int
	// 10 parts (200 ms each) in the current segment: that is the long one
	testmedia.Eventually(t, 30*time.Second, "the LL-HLS playlist 2 s into the 60 s segment", func() bool {
		var code, parts int
		code, pl = get(t, media, 20*time.Second)
		if code != 200 {
			return false
		}
		next, parts = llState(t, pl)
		return parts >= 10
	})
	c := http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Get(fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=0", media, next+1)); err == nil {
		resp.Body.Close()
		t.Fatalf("the reload for the next segment of a 60 s GOP was answered at once: %d", resp.StatusCode)
	}
	testmedia.Eventually(t, 20*time.Second, "the muxer closed after idle_timeout with the abandoned reload still waiting", func() bool {
		return strings.Contains(a.logs.String(), `"msg":"hls muxer ended","node":"test-node","component":"hls","stream":"live/longgop"`)
	})
}
