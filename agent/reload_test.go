package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// reloadAndWait sends SIGHUP and waits for the n-th "config reloaded" or
// "reload refused" line; it returns which.
func reloadAndWait(t *testing.T, a *agentProc) string {
	t.Helper()
	before := a.logs.String()
	ok0, bad0 := strings.Count(before, `"msg":"config reloaded"`), strings.Count(before, `"msg":"reload refused`)
	a.cmd.Process.Signal(syscall.SIGHUP)
	var res string
	testmedia.Eventually(t, 10*time.Second, "the reload to finish", func() bool {
		l := a.logs.String()
		switch {
		case strings.Count(l, `"msg":"config reloaded"`) > ok0:
			res = "reloaded"
		case strings.Count(l, `"msg":"reload refused`) > bad0:
			res = "refused"
		}
		return res != ""
	})
	return res
}

// editConfig rewrites the agent's config file with old replaced by new.
func editConfig(t *testing.T, a *agentProc, old, new string) {
	t.Helper()
	b, err := os.ReadFile(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(a.cfg, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// flvServes reports whether url answers with an FLV stream.
func flvServes(url string) bool {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	head := make([]byte, 3)
	_, err = io.ReadFull(resp.Body, head)
	return resp.StatusCode == 200 && err == nil && string(head) == "FLV"
}

// TestReloadKeepsStreams: reloads that change one thing leave everything
// else alone. An RTMP publisher and an RTMP player run from start to end
// across all of them and the player gets every frame.
func TestReloadKeepsStreams(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	ctx := context.Background()
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 12 * time.Second}.Defaults()
	pub := testmedia.Publish(t, ctx, src, a.rtmp("live/keep"))
	waitStreams(t, a, "stream live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	done := startPlayer(ctx, a.rtmp("live/keep"), 40*time.Second)
	waitStreams(t, a, "the RTMP player attached", func(sr streamsResp) bool {
		return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1
	})

	t.Run("listener moves", func(t *testing.T) {
		oldFLV := a.flv("live/keep")
		if !flvServes(oldFLV) {
			t.Fatalf("HTTP-FLV does not serve on %s before the move", oldFLV)
		}
		a.ports["http"] = testmedia.FreePort(t)
		a.writeConfig(t, "")
		if got := reloadAndWait(t, a); got != "reloaded" {
			t.Fatalf("moving http.listen was %s, want reloaded", got)
		}
		if !strings.Contains(a.logs.String(), `"msg":"listener moved"`) {
			t.Fatalf("reload did not move the HTTP-FLV listener (no \"listener moved\" log line)")
		}
		newFLV := a.flv("live/keep")
		testmedia.Eventually(t, 5*time.Second, "HTTP-FLV on the new port", func() bool { return flvServes(newFLV) })
		if flvServes(oldFLV) {
			t.Errorf("the old HTTP-FLV port still serves after the move")
		}
	})

	t.Run("node.name needs a restart", func(t *testing.T) {
		editConfig(t, a, `name = "test-node"`, `name = "renamed-node"`)
		if got := reloadAndWait(t, a); got != "refused" {
			t.Fatalf("changing node.name was %s, want refused", got)
		}
		if l := a.logs.String(); !strings.Contains(l, "need a restart") || !strings.Contains(l, "node.name") {
			t.Errorf("the refusal does not say node.name needs a restart")
		}
		h, err := a.Client().Health(context.Background())
		if err != nil || h.Node != "test-node" || h.Status != "ok" {
			t.Errorf("/healthz = %+v, %v after a refused rename, want ok from test-node", h, err)
		}
		editConfig(t, a, `name = "renamed-node"`, `name = "test-node"`) // back for the next cases
	})

	t.Run("log level", func(t *testing.T) {
		rtmpAddr := fmt.Sprintf("127.0.0.1:%d", a.ports["rtmp"])
		// quietPoke: an RTMP connection that hangs up after the handshake
		// logs at DEBUG.
		quietPoke := func() {
			c, err := net.Dial("tcp", rtmpAddr)
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			c.Write(append([]byte{3}, make([]byte, 1536)...)) // C0 C1, plain
			s := make([]byte, 1+1536+1536)                    // S0 S1 S2
			if _, err := io.ReadFull(c, s); err == nil {
				c.Write(s[1 : 1+1536]) // C2 echoes S1
			}
		}
		// marker: one that hangs up during the handshake logs a WARN; once
		// it shows, the quiet poke before it has been handled.
		marker := func() {
			n := strings.Count(a.logs.String(), `"msg":"connection refused"`)
			if c, err := net.Dial("tcp", rtmpAddr); err == nil {
				c.Close()
			}
			testmedia.Eventually(t, 5*time.Second, "the marker connection's WARN", func() bool {
				return strings.Count(a.logs.String(), `"msg":"connection refused"`) > n
			})
		}
		debugSince := func(from int) []string {
			var out []string
			for _, l := range strings.Split(a.logs.String(), "\n")[from:] {
				if strings.Contains(l, `"level":"DEBUG"`) {
					out = append(out, l)
				}
			}
			return out
		}

		quietPoke()
		marker()
		if d := debugSince(0); len(d) > 0 {
			t.Fatalf("DEBUG lines at log_level info: %q", d)
		}
		editConfig(t, a, `log_level = "info"`, `log_level = "debug"`)
		if got := reloadAndWait(t, a); got != "reloaded" {
			t.Fatalf("changing node.log_level was %s, want reloaded", got)
		}
		testmedia.Eventually(t, 5*time.Second, "a DEBUG line after the reload to debug", func() bool {
			quietPoke()
			return len(debugSince(0)) > 0
		})
		editConfig(t, a, `log_level = "debug"`, `log_level = "info"`)
		if got := reloadAndWait(t, a); got != "reloaded" {
			t.Fatalf("changing node.log_level back was %s, want reloaded", got)
		}
		n := strings.Count(a.logs.String(), "\n")
		quietPoke()
		marker()
		if d := debugSince(n); len(d) > 0 {
			t.Errorf("DEBUG lines after the reload back to info: %q", d)
		}
	})

	wantEveryFrame(t, done, src, "RTMP player", "across the reloads")
	if err := pub.Wait(15 * time.Second); err != nil {
		t.Errorf("publisher: %v %s", err, pub.Stderr)
	}
}
