package agent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/chromium"
)

// TestHLSPageInChromium: headless Chromium opens the node's player page
// of an RTMP-published stream with #ll-hls, plays it over LL-HLS (hls.js)
// and the decoded frame count keeps advancing (ten seconds of video,
// polled); the status page lists the stream. A screenshot of the playing
// page is kept (t.ArtifactDir: go test -artifacts -outputdir DIR keeps it).
func TestHLSPageInChromium(t *testing.T) {
	playPageInChromium(t, "", "#ll-hls", "ll-hls")
}

// TestWHEPPageInChromium: the player page without a fragment plays over
// WebRTC (the page's own WHEP client; WebRTC is on by default), the
// decoded frame count advances for ten seconds of video, the WebRTC
// reader shows in /v1/streams and the page shows a measured latency; the
// page's candidates went to the node by trickle ICE (PATCH) after an
// offer without any. A screenshot is kept as for TestHLSPageInChromium.
func TestWHEPPageInChromium(t *testing.T) {
	a, b := playPageInChromium(t, "", "", "whep")
	waitStreams(t, a, "the page's WebRTC reader listed", func(sr streamsResp) bool {
		return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount >= 1
	})
	var lat float64
	testmedia.Eventually(t, 30*time.Second, "the page measures a WebRTC latency", func() bool {
		b.Eval(t, "window.relaymeshLatency || 0", &lat)
		return lat > 0
	})
	var decoded int
	b.Eval(t, "window.relaymeshDecoded || 0", &decoded)
	t.Logf("WebRTC: %d frames decoded (getStats), latency shown %.0f ms (jitter buffer + RTT/2)", decoded, lat*1000)
	if decoded == 0 {
		t.Errorf("getStats counts no decoded WebRTC frames")
	}
	var trickled int
	b.Eval(t, "window.relaymeshTrickled || 0", &trickled)
	t.Logf("candidates trickled by PATCH: %d", trickled)
	if trickled == 0 {
		t.Errorf("the page trickled no candidate the node took")
	}
}

// TestFLVPageInChromium: with auth.play on, the player page opened with
// a signed play token and #flv plays over HTTP-FLV (the vendored
// mpegts.js, MSE), the token carried to the .flv request: decoded frames
// advance for ten seconds of video, the HTTP-FLV reader shows in
// /v1/streams; a screenshot is kept as for TestHLSPageInChromium. The
// same page without the token plays nothing and shows the refusal.
func TestFLVPageInChromium(t *testing.T) {
	keyFile := signingKey(t)
	tok := signPlay(t, keyFile, "live/web", "10m")
	a, b := playPageInChromium(t, fmt.Sprintf("[auth]\npublish = false\nplay = true\nkey_file = %q\n", keyFile), "?"+tok+"#flv", "flv")
	waitStreams(t, a, "the page's HTTP-FLV reader listed", func(sr streamsResp) bool {
		if len(sr.Streams) != 1 {
			return false
		}
		for _, r := range sr.Streams[0].Readers {
			if r.Protocol == "httpflv" {
				return true
			}
		}
		return false
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	b.Call(t, "Page.navigate", map[string]any{"url": base + "/live/web/#flv"}, nil)
	var status string
	testmedia.Eventually(t, 30*time.Second, "the page without the token shows the refused .flv request", func() bool {
		b.Eval(t, "document.getElementById('status') ? document.getElementById('status').textContent : ''", &status)
		return strings.Contains(status, "mpegts.js: NetworkError")
	})
	t.Logf("without the token: %s", status)
	var frames int
	b.Eval(t, "window.relaymeshFrames || 0", &frames)
	if frames != 0 {
		t.Errorf("the page without the token decoded %d frames", frames)
	}
}

// TestPageFallsBackToHLS: with webrtc.enabled = false the page's WHEP
// offer is refused and the page plays over LL-HLS instead.
func TestPageFallsBackToHLS(t *testing.T) {
	_, b := playPageInChromium(t, "[webrtc]\nenabled = false\n", "", "ll-hls")
	var status string
	b.Eval(t, "document.getElementById('status').textContent", &status)
	if !strings.Contains(status, "WebRTC: WHEP answered") {
		t.Errorf("status %q does not say why WebRTC was not used", status)
	}
}

// playPageInChromium publishes live/web over RTMP to an agent with
// extra, opens its player page with suffix (a query, a fragment) in
// Chromium and checks that it plays over transport for ten seconds of
// video and that / (with the page's query) lists the stream.
func playPageInChromium(t *testing.T, extra, suffix, transport string) (*agentProc, *chromium.Page) {
	t.Helper()
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, extra)
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Duration: 2 * time.Minute}
	pub := testmedia.Publish(t, context.Background(), src, a.rtmp("live/web"))
	t.Cleanup(func() { pub.Cmd.Process.Kill() })
	waitStreams(t, a, "publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	b := chromium.Start(t, base+"/live/web/"+suffix)

	frames := func() int {
		var n int
		b.Eval(t, "window.relaymeshFrames || 0", &n)
		return n
	}
	testmedia.Eventually(t, 60*time.Second, "the page decodes frames", func() bool { return frames() > 0 })
	var got string
	b.Eval(t, "window.relaymeshTransport || ''", &got)
	if got != transport {
		var status string
		b.Eval(t, "document.getElementById('status').textContent", &status)
		t.Fatalf("page plays over %q, want %s (status: %s)", got, transport, status)
	}
	// playback keeps going: ten more seconds of video (250 frames) are
	// decoded; polled, not timed
	first := frames()
	testmedia.Eventually(t, 2*time.Minute, fmt.Sprintf("decoded frames advance from %d past %d", first, first+250), func() bool {
		return frames() >= first+250
	})
	var status string
	b.Eval(t, "document.getElementById('status').textContent", &status)
	t.Logf("player status after 10 s of video: %s", status)

	shot := filepath.Join(t.ArtifactDir(), transport+"-player.png")
	b.Screenshot(t, shot)
	t.Logf("screenshot of the playing page: %s", shot)

	var listed string
	b.Eval(t, "fetch('/' + location.search).then(r => r.text()).then(h => new DOMParser().parseFromString(h, 'text/html').querySelector('tr.stream').dataset.key)", &listed)
	if listed != "live/web" {
		t.Errorf("status page lists %q, want live/web", listed)
	}
	return a, b
}
