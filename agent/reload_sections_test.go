package agent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// reloadCmd runs `relaymesh reload` (the unit's ExecReload, the control
// socket) against the agent started with env and returns its verdict.
func reloadCmd(t *testing.T, env []string) (ok bool, stderr string) {
	t.Helper()
	out, errOut, code := runWithin(t, time.Minute, env, "reload")
	if code == 0 && !strings.Contains(out, "reloaded") {
		t.Fatalf("reload exit 0 without saying so: %q %q", out, errOut)
	}
	return code == 0, errOut
}

// srtPublish publishes one second of H.264 over SRT and returns ffmpeg's
// error and output.
func srtPublish(port int, streamID, pass string) ([]byte, error) {
	return exec.Command("ffmpeg", append(ffmpegTS(1), srtURL(port, streamID, pass, 32, ""))...).CombinedOutput()
}

// dialable reports whether something accepts TCP on addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestReloadSRTSettings: the SRT listener's settings apply on reload to
// the connections that come after it: a passphrase set by reload refuses
// a publisher without it (with the reason), a [[srt_stream]] added by
// reload takes its own passphrase, and removing it lets the plain
// publisher in again.
func TestReloadSRTSettings(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	a := startAgentIn(t, t.TempDir(), "test-node", "", env)
	port := a.ports["srt"]
	if out, err := srtPublish(port, "publish:live/plain", ""); err != nil {
		t.Fatalf("a plain SRT publish before any reload failed: %v %s", err, out)
	}

	t.Run("srt.publish_passphrase", func(t *testing.T) {
		a.writeConfig(t, "")
		editConfig(t, a, "[srt]\n", "[srt]\npublish_passphrase = \""+pass256+"\"\n")
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("reload refused: %s", errOut)
		}
		if out, err := srtPublish(port, "publish:live/plain", ""); err == nil {
			t.Fatalf("an SRT publish without the passphrase set by the reload succeeded: %s", out)
		}
		testmedia.Eventually(t, 10*time.Second, "the refusal's reason in the agent log", func() bool {
			return strings.Contains(a.logs.String(), "publish live/plain: needs a passphrase and the caller sent none")
		})
		if out, err := srtPublish(port, "publish:live/plain", pass256); err != nil {
			t.Errorf("an SRT publish with the new passphrase failed: %v %s", err, out)
		}
	})
	t.Run("srt_stream", func(t *testing.T) {
		a.writeConfig(t, "[[srt_stream]]\nkey = \"live/own\"\npublish_passphrase = \""+pass128+"\"\n")
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("reload refused: %s", errOut)
		}
		if out, err := srtPublish(port, "publish:live/own", "not-the-right-passphrase"); err == nil {
			t.Fatalf("a publish with a wrong passphrase for the reloaded [[srt_stream]] succeeded: %s", out)
		}
		testmedia.Eventually(t, 10*time.Second, "the refusal's reason in the agent log", func() bool {
			return strings.Contains(a.logs.String(), "publish live/own: wrong passphrase")
		})
		if out, err := srtPublish(port, "publish:live/own", pass128); err != nil {
			t.Errorf("a publish with the [[srt_stream]] passphrase failed: %v %s", err, out)
		}
		if out, err := srtPublish(port, "publish:live/plain", ""); err != nil {
			t.Errorf("the srt.publish_passphrase removed by the reload still refuses: %v %s", err, out)
		}
	})
	t.Run("srt.latency", func(t *testing.T) {
		a.writeConfig(t, "")
		editConfig(t, a, "[srt]\n", "[srt]\nlatency = \"650ms\"\n")
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("reload refused: %s", errOut)
		}
		// the caller asks less (ffmpeg's latency is in microseconds): the listener's wins
		p := startCmd(t, "", "ffmpeg", append(ffmpegTS(20), srtURL(port, "publish:live/lat", "", 0, "&latency=80000"))...)
		var conns []srtConnStats
		testmedia.Eventually(t, 10*time.Second, "the publisher's SRT connection", func() bool {
			conns = streamSRT(t, a, "live/lat")
			return len(conns) == 1
		})
		if conns[0].LatencyMs != 650 {
			t.Errorf("SRT stats %+v, want one connection with the reloaded latency 650 ms", conns)
		}
		syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
		streamGone(t, a, "live/lat")
	})
	t.Run("srt.max_connections", func(t *testing.T) {
		// one publisher holds the only connection the reload allows
		a.writeConfig(t, "")
		editConfig(t, a, "[srt]\n", "[srt]\nmax_connections = 1\n")
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("reload refused: %s", errOut)
		}
		startCmd(t, "", "ffmpeg", append(ffmpegTS(60), srtURL(port, "publish:live/holder", "", 0, ""))...)
		waitVideo(t, a, "live/holder")
		if out, err := srtPublish(port, "publish:live/second", ""); err == nil {
			t.Fatalf("a second SRT connection beyond srt.max_connections = 1 succeeded: %s", out)
		}
		testmedia.Eventually(t, 10*time.Second, "the limit in the agent log", func() bool {
			return strings.Contains(a.logs.String(), "too many SRT connections (limit 1)")
		})
	})
}

// TestReloadMovesRTMPAndAdvertises: a reload that moves rtmp.listen
// serves publishers on the new port (ffmpeg publishes there) and the
// cluster advertises the new port, so /v1/locate hands out the URL that
// works.
func TestReloadMovesRTMPAndAdvertises(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	cluster := fmt.Sprintf("[cluster]\nenabled = true\nbind = \"127.0.0.1:%d\"\n", testmedia.FreePort(t))
	a := startAgentIn(t, t.TempDir(), "test-node", cluster, env)
	locate := a.api("/v1/locate?app=live&stream=cam1&client=127.0.0.1")
	locatesAt := func(port int) bool {
		st, body := call(t, "GET", locate, "", "")
		return st == 200 && strings.Contains(body, fmt.Sprintf("rtmp://127.0.0.1:%d/live/cam1", port))
	}
	testmedia.Eventually(t, 10*time.Second, "locate naming the RTMP port", func() bool { return locatesAt(a.ports["rtmp"]) })

	oldPort := a.ports["rtmp"]
	a.ports["rtmp"] = freePorts(t, 1)[0]
	a.writeConfig(t, cluster)
	if ok, errOut := reloadCmd(t, env); !ok {
		t.Fatalf("moving rtmp.listen was refused: %s", errOut)
	}
	testmedia.Eventually(t, 10*time.Second, "locate naming the moved RTMP port", func() bool { return locatesAt(a.ports["rtmp"]) })
	if locatesAt(oldPort) {
		t.Errorf("locate still names the old RTMP port %d", oldPort)
	}
	src := testmedia.Source{Realtime: true, Duration: 30 * time.Second}.Defaults()
	testmedia.Publish(t, context.Background(), src, a.rtmp("live/cam1"))
	waitVideo(t, a, "live/cam1")
}

// TestRefusedMixedReload: a reload that moves rtmp.listen beside a key
// that cannot be applied (a cluster key that needs a restart; a
// qos.interface that does not exist) is refused with the reason, leaves
// every listener where it was, and the next valid reload (the move
// alone) succeeds: ffmpeg publishes on the new port.
func TestRefusedMixedReload(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	a := startAgentIn(t, t.TempDir(), "test-node", "", env)
	addr := func(name string) string { return fmt.Sprintf("127.0.0.1:%d", a.ports[name]) }
	before := map[string]string{"rtmp": addr("rtmp"), "http": addr("http"), "api": addr("api")}
	oldSRT := a.ports["srt"]
	fresh := freePorts(t, 3)
	a.ports["rtmp"], a.ports["http"], a.ports["srt"] = fresh[0], fresh[1], fresh[2]
	moved := map[string]string{"rtmp": addr("rtmp"), "http": addr("http")}
	short := writeFile(t, t.TempDir()+"/hook.secret", "short\n")
	if st, body := call(t, "POST", a.api("/v1/flows"), "", `{"id":"taken","source":{"type":"rtmp-push","stream":"live/taken"}}`); st != 201 {
		t.Fatalf("POST /v1/flows: %d %s", st, body)
	}
	refusals := []struct{ name, extra, want string }{
		{"cluster key needs a restart", "[cluster]\nenabled = true\nbind = \"127.0.0.1:0\"\n", "cluster.enabled"},
		// these two are found after the listeners prepared their sockets
		{"webhook secret too short", fmt.Sprintf("[webhooks]\nurl = \"http://127.0.0.1:9/\"\nsecret_file = %q\n", short), "webhooks.secret_file"},
		{"flow id of an API-made flow", "[[flow]]\nid = \"taken\"\nsource = {type = \"rtmp-push\", stream = \"live/other\"}\n", `flow "taken": an API-made flow has that id`},
	}
	if os.Geteuid() == 0 {
		refusals = append(refusals, struct{ name, extra, want string }{"qos interface missing",
			"[qos]\nenabled = true\ninterface = \"rmnosuch0\"\nrate = \"100M\"\n", `qos.interface "rmnosuch0"`})
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			a.writeConfig(t, r.extra)
			ok, errOut := reloadCmd(t, env)
			if ok || !strings.Contains(errOut, r.want) {
				t.Fatalf("reload ok=%v, stderr %q; want refused naming %s", ok, errOut, r.want)
			}
			for name, ad := range before {
				if !dialable(ad) {
					t.Errorf("%s no longer listens on %s after the refused reload", name, ad)
				}
			}
			for name, ad := range moved {
				if dialable(ad) {
					t.Errorf("%s listens on %s: the refused reload moved it", name, ad)
				}
			}
			if out, err := srtPublish(oldSRT, "publish:live/srt", ""); err != nil {
				t.Errorf("SRT no longer takes publishers on its old port %d: %v %s", oldSRT, err, out)
			}
		})
	}
	t.Run("the next valid reload", func(t *testing.T) {
		a.writeConfig(t, "")
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("the valid reload after the refusals was refused: %s", errOut)
		}
		src := testmedia.Source{Realtime: true, Duration: 30 * time.Second}.Defaults()
		testmedia.Publish(t, context.Background(), src, a.rtmp("live/moved"))
		waitVideo(t, a, "live/moved")
		if !flvServes(a.flv("live/moved")) {
			t.Errorf("HTTP-FLV does not serve on its new port %s", moved["http"])
		}
		if out, err := srtPublish(a.ports["srt"], "publish:live/srt2", ""); err != nil {
			t.Errorf("SRT does not take publishers on its new port: %v %s", err, out)
		}
		if dialable(before["rtmp"]) {
			t.Errorf("RTMP still listens on its old address %s", before["rtmp"])
		}
	})
}

// flowConf is a [[flow]] whose source is the SRT listener's stream key
// with passphrase pass.
func flowConf(id, key, pass string) string {
	return fmt.Sprintf("[[flow]]\nid = %q\nstart = true\n[flow.source]\ntype = \"srt-listener\"\nstream = %q\npassphrase = %q\n[[flow.outputs]]\nname = \"flv\"\ntype = \"httpflv\"\n", id, key, pass)
}

// TestReloadFlows: a changed [[flow]] is applied by reload (its new
// source passphrase is the one an SRT publisher needs), and a reload
// whose [[flow]] cannot be created (it clashes with an API-made flow's
// SRT settings) is refused with the reason and rolls back: the changed
// flow keeps its old settings and the flow it added is gone.
func TestReloadFlows(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	a := startAgentIn(t, t.TempDir(), "test-node", flowConf("f", "live/f", pass256), env)
	port := a.ports["srt"]
	api := `{"id":"api","source":{"type":"srt-listener","stream":"live/shared","passphrase":"` + pass128 + `"},"outputs":[{"name":"flv","type":"httpflv"}]}`
	if st, body := call(t, "POST", a.api("/v1/flows"), "", api); st != 201 {
		t.Fatalf("POST /v1/flows: %d %s", st, body)
	}
	takes := func(pass string) bool {
		_, err := srtPublish(port, "publish:live/f", pass)
		return err == nil
	}
	if !takes(pass256) {
		t.Fatalf("flow f does not take its publisher before any reload")
	}

	t.Run("refused and rolled back", func(t *testing.T) {
		a.writeConfig(t, flowConf("f", "live/f", pass128)+flowConf("clash", "live/shared", pass256))
		ok, errOut := reloadCmd(t, env)
		if ok || !strings.Contains(errOut, `flow "clash"`) || !strings.Contains(errOut, `flow "api" already sets the SRT passphrase`) {
			t.Fatalf("reload ok=%v, stderr %q; want refused naming the clash", ok, errOut)
		}
		if st, body := call(t, "GET", a.api("/v1/flows/clash"), "", ""); st != 404 {
			t.Errorf("GET /v1/flows/clash after the refused reload: %d %s, want 404", st, body)
		}
		if st, body := call(t, "GET", a.api("/v1/flows/f"), "", ""); st != 200 || !strings.Contains(body, `"running"`) {
			t.Errorf("GET /v1/flows/f after the refused reload: %d %s, want it running", st, body)
		}
		if !takes(pass256) {
			t.Errorf("flow f refuses its old passphrase after the refused reload")
		}
		if takes(pass128) {
			t.Errorf("flow f takes the passphrase of the refused reload")
		}
	})
	t.Run("applied", func(t *testing.T) {
		a.writeConfig(t, flowConf("f", "live/f", pass128))
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("reload refused: %s", errOut)
		}
		if !takes(pass128) {
			t.Errorf("flow f refuses the passphrase the reload set")
		}
		if takes(pass256) {
			t.Errorf("flow f still takes the passphrase the reload replaced")
		}
		if st, body := call(t, "GET", a.api("/v1/flows/f"), "", ""); st != 200 || !strings.Contains(body, `"running"`) {
			t.Errorf("GET /v1/flows/f after the reload: %d %s, want it running", st, body)
		}
	})
}

// relayConf is [objects] max_relays = max and the relays ids.
func relayConf(max int, ids ...string) string {
	s := fmt.Sprintf("[objects]\nmax_relays = %d\n", max)
	for _, id := range ids {
		s += fmt.Sprintf("[[relay]]\nid = %q\npattern = \"live/%s\"\nurl = \"rtmp://example.com/app/%s\"\nstart_time = 2030-01-01T00:00:00Z\nend_time = 2030-01-02T00:00:00Z\n", id, id, id)
	}
	return s
}

// TestReloadRaisesObjectLimits: a reload that raises objects.max_relays
// and adds a relay beyond the old limit is accepted: its objects are
// created under its own limits. A reload whose relays exceed its own
// limit is refused naming the key.
func TestReloadRaisesObjectLimits(t *testing.T) {
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	a := startAgentIn(t, t.TempDir(), "test-node", relayConf(1, "r1"), env)
	a.writeConfig(t, relayConf(1, "r1", "r2"))
	if ok, errOut := reloadCmd(t, env); ok || !strings.Contains(errOut, "objects.max_relays") {
		t.Errorf("two relays under max_relays = 1: reload ok=%v, stderr %q; want refused naming objects.max_relays", ok, errOut)
	}
	a.writeConfig(t, relayConf(2, "r1", "r2"))
	if ok, errOut := reloadCmd(t, env); !ok {
		t.Fatalf("raising max_relays with a second relay was refused: %s", errOut)
	}
	if st, body := call(t, "GET", a.api("/v1/relays/r2"), "", ""); st != 200 {
		t.Errorf("GET /v1/relays/r2 after the reload: %d %s, want 200", st, body)
	}
}
