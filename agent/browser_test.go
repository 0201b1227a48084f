package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// cdp is a minimal Chrome DevTools Protocol client: one websocket, calls
// answered in order, events ignored.
type cdp struct {
	ws *websocket.Conn
	id int
}

func (c *cdp) call(t *testing.T, method string, params any, result any) {
	t.Helper()
	c.id++
	if err := websocket.JSON.Send(c.ws, map[string]any{"id": c.id, "method": method, "params": params}); err != nil {
		t.Fatalf("cdp %s: %v", method, err)
	}
	c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if err := websocket.JSON.Receive(c.ws, &msg); err != nil {
			t.Fatalf("cdp %s: %v", method, err)
		}
		if msg.ID != c.id {
			continue // an event
		}
		if msg.Error != nil {
			t.Fatalf("cdp %s: %s", method, msg.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(msg.Result, result); err != nil {
				t.Fatalf("cdp %s result: %v", method, err)
			}
		}
		return
	}
}

// eval returns the value of a JavaScript expression in the page.
func (c *cdp) eval(t *testing.T, expr string, v any) {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
	}
	c.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if err := json.Unmarshal(r.Result.Value, v); err != nil {
		t.Fatalf("eval %s: %v (%s)", expr, err, r.Result.Value)
	}
}

// startChromium runs headless Chromium on url and returns a DevTools
// client attached to its page.
func startChromium(t *testing.T, url string) *cdp {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Geteuid() == 0 {
			t.Fatal("chromium is not installed: run test/deps.sh (as root it installs chromium and chromium-driver)")
		}
		t.Skip("chromium is not installed and this is not root: sudo test/deps.sh installs it")
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
		"--no-first-run", "--autoplay-policy=no-user-gesture-required",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+dir, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "--remote-allow-origins=*", url)
	// its own process group: chromium's helpers (zygote, renderers,
	// crashpad) outlive a kill of the main process and go on writing in
	// the profile, which TempDir's cleanup then cannot remove
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		testmedia.Eventually(t, 10*time.Second, "chromium's helper processes gone", func() bool {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return syscall.Kill(-cmd.Process.Pid, 0) == syscall.ESRCH
		})
	})
	var port, path string
	testmedia.Eventually(t, 30*time.Second, "chromium's DevToolsActivePort", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort"))
		lines := strings.Fields(string(b))
		if err != nil || len(lines) < 2 {
			return false
		}
		port, path = lines[0], lines[1]
		return true
	})
	ws, err := websocket.Dial("ws://127.0.0.1:"+port+path, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("devtools: %v", err)
	}
	b := &cdp{ws: ws}
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	b.call(t, "Target.getTargets", map[string]any{}, &targets)
	page := ""
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			page = ti.TargetID
		}
	}
	if page == "" {
		t.Fatal("chromium has no page")
	}
	ws.Close()
	pws, err := websocket.Dial("ws://127.0.0.1:"+port+"/devtools/page/"+page, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("devtools page: %v", err)
	}
	t.Cleanup(func() { pws.Close() })
	return &cdp{ws: pws}
}

// TestHLSPageInChromium: headless Chromium opens the node's player page
// of an RTMP-published stream, plays it over LL-HLS (hls.js) and the
// decoded frame count keeps advancing (ten seconds of video, polled);
// the status page lists the stream. A screenshot of the playing page is kept
// ($RELAYMESH_ARTIFACTS, else the test's temp dir).
func TestHLSPageInChromium(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Duration: 2 * time.Minute}
	pub := testmedia.Publish(t, context.Background(), src, a.rtmp("live/web"))
	defer pub.Cmd.Process.Kill()
	waitStreams(t, a, "publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	b := startChromium(t, base+"/live/web/")

	frames := func() int {
		var n int
		b.eval(t, "window.relaymeshFrames || 0", &n)
		return n
	}
	testmedia.Eventually(t, 60*time.Second, "the page decodes frames", func() bool { return frames() > 0 })
	var transport string
	b.eval(t, "window.relaymeshTransport || ''", &transport)
	if transport != "ll-hls" {
		t.Errorf("page plays over %q, want ll-hls", transport)
	}
	// playback keeps going: ten more seconds of video (250 frames) are
	// decoded; polled, not timed
	first := frames()
	testmedia.Eventually(t, 2*time.Minute, fmt.Sprintf("decoded frames advance from %d past %d", first, first+250), func() bool {
		return frames() >= first+250
	})
	var status string
	b.eval(t, "document.getElementById('status').textContent", &status)
	t.Logf("player status after 10 s of video: %s", status)

	var shot struct {
		Data string `json:"data"`
	}
	b.call(t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	outDir := os.Getenv("RELAYMESH_ARTIFACTS")
	if outDir == "" {
		outDir = t.TempDir()
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(outDir, "hls-player.png")
	if err := os.WriteFile(shotPath, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the playing page: %s", shotPath)

	var listed string
	b.eval(t, "fetch('/').then(r => r.text()).then(h => new DOMParser().parseFromString(h, 'text/html').querySelector('tr.stream').dataset.key)", &listed)
	if listed != "live/web" {
		t.Errorf("status page lists %q, want live/web", listed)
	}
}
