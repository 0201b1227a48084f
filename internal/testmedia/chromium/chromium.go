// Package chromium runs headless Chromium for tests and benchmarks and
// drives its page through a minimal Chrome DevTools Protocol client.
package chromium

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// Page is a DevTools client attached to one page: calls answered in
// order, events ignored.
type Page struct {
	ws *websocket.Conn
	id int
}

// Call sends one DevTools method and decodes its result into result
// (nil: discarded); an error fails t.
func (c *Page) Call(t testing.TB, method string, params any, result any) {
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

// Eval stores the value of a JavaScript expression in the page (a
// promise is awaited) in v.
func (c *Page) Eval(t testing.TB, expr string, v any) {
	t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception *struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	c.Call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if e := r.ExceptionDetails; e != nil {
		msg := e.Text
		if e.Exception != nil {
			msg += " " + e.Exception.Description
		}
		t.Fatalf("eval %s: %s", expr, msg)
	}
	if err := json.Unmarshal(r.Result.Value, v); err != nil {
		t.Fatalf("eval %s: %v (%s)", expr, err, r.Result.Value)
	}
}

// Screenshot writes a PNG of the page to path.
func (c *Page) Screenshot(t testing.TB, path string) {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	c.Call(t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Start runs headless Chromium on url and returns a DevTools client
// attached to its page; the test's cleanup kills it and its helpers.
// Without chromium the test fails as root (CI, where test/deps.sh
// installs it) and is skipped otherwise.
func Start(t testing.TB, url string) *Page {
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
		poll.Until(t, 10*time.Second, "chromium's helper processes gone", func() bool {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return syscall.Kill(-cmd.Process.Pid, 0) == syscall.ESRCH
		})
	})
	var port, path string
	poll.Until(t, 30*time.Second, "chromium's DevToolsActivePort", func() bool {
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
	b := &Page{ws: ws}
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	b.Call(t, "Target.getTargets", map[string]any{}, &targets)
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
	return &Page{ws: pws}
}
