package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/test/netlab"
)

// reloadWith replaces node's extra TOML, rewrites its config and sends
// SIGHUP; it waits for the agent's "config reloaded" line and fails on
// "reload refused".
func (c *cluster) reloadWith(node, extra string) {
	c.t.Helper()
	if line := c.reload(node, extra); line != "" {
		c.t.Fatalf("%s refused the reload: %s", node, line)
	}
}

// reload is reloadWith that returns the refusal's log line ("" when the
// agent reloaded).
func (c *cluster) reload(node, extra string) (refused string) {
	c.t.Helper()
	log := func() string { return string(must(os.ReadFile(c.logs[node]))) }
	before, nrefused := strings.Count(log(), `"config reloaded"`), strings.Count(log(), "reload refused")
	c.extra[node] = extra
	c.writeConfig(siteNamed(c.t, node), c.seeds[node], filepath.Join(c.dir, "gossip.key"))
	if err := c.procs[node].Process.Signal(syscall.SIGHUP); err != nil {
		c.t.Fatal(err)
	}
	testmedia.Eventually(c.t, 20*time.Second, node+" reloads its config or refuses", func() bool {
		l := log()
		if strings.Count(l, "reload refused") > nrefused {
			lines := strings.Split(grepLines(l, "reload refused"), "\n")
			refused = lines[len(lines)-1]
			return true
		}
		return strings.Count(l, `"config reloaded"`) > before
	})
	return refused
}

// TestClusterReplaceSettings: [cluster.replace] is enforced by the
// running edge and a reload changes it live. The stream goes to tyo
// while esin's path to sin is slow; then the path gets fast, and esin
// measures sin (4 ms) far below tyo (74 ms), which the defaults take as
// clearly better. With enabled = false (also after a refused reload
// that would enable it with ratio = 1.5), and then (reloaded) with
// ratio = 0.01 (4/74 = 0.054 is above it), the uplink stays on tyo for
// 10 s of such measurements (with the defaults it moves about 3-4 s
// after them: the last step); reloaded to the defaults, it moves to sin.
func TestClusterReplaceSettings(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := placedFar(t, ctx, "\n[cluster.replace]\nenabled = false\n", "replaceset")
	const stream = "live/replaceset"
	if err := c.lab.SetLink("esin", "sin", netlab.RTT(wanRTT("esin", "sin"), 0)); err != nil {
		t.Fatal(err)
	}
	// what esin's API says of its RTTs: sin clearly better than tyo by
	// the default margin (20 ms) and ratio (0.7)
	clearlyBetter := func() (bool, string) {
		m := c.nodes("esin")
		s, ty := m["sin"].RTTMs, m["tyo"].RTTMs
		if s == nil || ty == nil {
			return false, "an RTT unknown"
		}
		return *ty-*s >= 20 && *s <= 0.7**ty, fmt.Sprintf("sin %.0f ms, tyo %.0f ms", *s, *ty)
	}
	// stays checks that the uplink stays running on tyo, never moving,
	// for 10 s during which every look at esin's RTTs finds sin clearly
	// better (with the defaults it moves 3-4 s into such a stretch). The
	// RTTs are measured, so a stretch that a measurement interrupts (a
	// loaded host) starts again, for at most a minute; the uplink must
	// not move in any of it.
	stays := func(setting string) {
		t.Helper()
		testmedia.Eventually(t, 60*time.Second, "esin measures sin clearly better than tyo", func() bool { ok, _ := clearlyBetter(); return ok })
		start := time.Now()
		from, restarts := start, 0
		var rtts string
		for time.Since(from) < 10*time.Second {
			u, ok := c.uplink("esin", stream)
			better, now := clearlyBetter()
			if !ok || u.Center != "tyo" || u.Moves != 0 || u.Relay.State != "running" {
				t.Fatalf("with %s the uplink did not stay running on tyo: %+v (%s)", setting, u, now)
			}
			switch {
			case !better:
				from, rtts = time.Now(), ""
				restarts++
			case rtts == "":
				rtts = now
			}
			if time.Since(start) > 60*time.Second {
				t.Fatalf("with %s: esin's RTTs did not show sin clearly better than tyo for 10 s in a minute (%d interruptions; last %s)", setting, restarts, now)
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("with %s the uplink stayed on tyo for 10 s while esin measured sin clearly better (%s at the start; %d interruptions, %s in all)",
			setting, rtts, restarts, time.Since(start).Round(time.Second))
	}
	stays("enabled = false")

	// hostile: a reload that would enable it with a ratio out of range
	// is refused with the key named, and changes nothing
	if line := c.reload("esin", "\n[cluster.replace]\nenabled = true\nratio = 1.5\n"); !strings.Contains(line, "cluster.replace.ratio: 1.5 is not in (0, 1]") {
		t.Fatalf("a reload with ratio = 1.5: refusal %q, want one naming cluster.replace.ratio", line)
	}
	stays("enabled = false after the refused reload")

	c.reloadWith("esin", "\n[cluster.replace]\nenabled = true\nratio = 0.01\n")
	stays("ratio = 0.01 (reloaded)")

	c.reloadWith("esin", "") // the defaults
	reloaded := time.Now()
	c.uplinkRunsOn("esin", stream, "sin", 60*time.Second)
	t.Logf("reloaded to the defaults: the uplink runs on sin %s later", time.Since(reloaded).Round(10*time.Millisecond))
	u, _ := c.uplink("esin", stream)
	if u.Moves != 1 || u.Replacements != 1 {
		t.Errorf("uplink after the reload to the defaults: %d moves, %d re-placements; want 1 and 1", u.Moves, u.Replacements)
	}
	if line := grepLines(string(must(os.ReadFile(c.logs["esin"]))), "uplink re-placed make-before-break"); line == "" {
		t.Errorf("esin did not log the re-placement")
	}
	testmedia.Eventually(t, 20*time.Second, "fra's directory names sin", func() bool { return c.host("fra", stream) == "sin" })
}
