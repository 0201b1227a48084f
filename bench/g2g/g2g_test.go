// Package g2g is the Chromium end of bench/g2g.sh, which measures
// glass-to-glass latency: the publisher draws its wall clock into every
// frame as 24 black/white cells (milliseconds mod 2^24, bit 0 first, 24 px
// each, at x = 16..591, y = 16..47 of a 640x360 picture); the page plays
// the stream and an injected script reads the cells back from each
// presented frame and subtracts them from the frame's expected display
// time. Publisher, node and browser share the machine's clock.
//
// TestGlassToGlass only runs when bench/g2g.sh sets G2G_URL; it reports
// figures and asserts no timing.
package g2g

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/testmedia/chromium"
)

// reader collects window.g2g (latencies in ms) and window.g2gBad (frames
// whose cells did not decode) from every presented frame.
const reader = `(function () {
  var v = document.getElementById('video');
  var c = document.createElement('canvas'), x = c.getContext('2d', { willReadFrequently: true });
  window.g2g = []; window.g2gBad = 0;
  function onFrame(now, md) {
    var shown = performance.timeOrigin + (md.expectedDisplayTime || now);
    var w = v.videoWidth, h = v.videoHeight;
    if (w && h) {
      c.width = w; c.height = h;
      x.drawImage(v, 0, 0, w, h);
      var sx = w / 640, d = x.getImageData(0, Math.round(32 * h / 360), w, 1).data, val = 0, ok = true;
      for (var b = 0; b < 24; b++) {
        var l = d[Math.round((16 + 24 * b + 12) * sx) * 4];
        if (l > 160) val += Math.pow(2, b); else if (l > 96) ok = false;
      }
      var lat = ((Math.round(shown) % 16777216) - val + 16777216) % 16777216;
      if (ok && lat < 60000) g2g.push(lat); else g2gBad++;
    }
    v.requestVideoFrameCallback(onFrame);
  }
  v.requestVideoFrameCallback(onFrame);
  return true;
})()`

func TestGlassToGlass(t *testing.T) {
	url := os.Getenv("G2G_URL")
	if url == "" {
		t.Skip("bench/g2g.sh runs this (G2G_URL unset)")
	}
	transport := os.Getenv("G2G_TRANSPORT")
	seconds, _ := strconv.Atoi(os.Getenv("G2G_SECONDS"))
	if seconds <= 0 {
		seconds = 30
	}
	b := chromium.Start(t, url)
	poll.Until(t, 60*time.Second, "the page plays", func() bool {
		var n int
		b.Eval(t, "window.relaymeshFrames || 0", &n)
		return n > 30
	})
	var got string
	b.Eval(t, "window.relaymeshTransport || ''", &got)
	if transport != "" && got != transport {
		t.Fatalf("page plays over %q, want %q", got, transport)
	}
	// let the player settle at its live distance, then sample
	time.Sleep(5 * time.Second)
	var ok bool
	b.Eval(t, reader, &ok)
	time.Sleep(time.Duration(seconds) * time.Second)
	var lat []float64
	var bad int
	var status string
	b.Eval(t, "window.g2g", &lat)
	b.Eval(t, "window.g2gBad", &bad)
	b.Eval(t, "document.getElementById('status').textContent", &status)
	if len(lat) == 0 {
		t.Fatalf("no frame decoded its timestamp (%d did not): status %s", bad, status)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))] }
	res := map[string]any{"transport": got, "frames": len(lat), "undecoded": bad, "seconds": seconds,
		"min_ms": lat[0], "p10_ms": q(0.1), "p50_ms": q(0.5), "p90_ms": q(0.9), "max_ms": lat[len(lat)-1], "page_status": status}
	j, _ := json.Marshal(res)
	fmt.Println("G2G " + string(j))
	if out := os.Getenv("G2G_SCREENSHOT"); out != "" {
		b.Screenshot(t, out)
	}
}
