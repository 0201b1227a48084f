package agent_test

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowHealthFailover: the primary publisher of a flow stays connected
// and keeps sending audio, but after 6 s its video drops to one frame in
// five (25 -> 5 fps). The flow fails over to the backup as for a dead
// source, and the switch, the log and the source's status name the rule
// that fired (framerate).
func TestFlowHealthFailover(t *testing.T) {
	var v healthView
	a := startHealthFlow(t, "hf", map[string]any{"type": "rtmp-push", "stream": "live/hprimary"}, &v)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second}.Defaults()
	// the primary: the same source, its video thinned to every fifth
	// frame after 6 s (timestamps kept: the frames are gone, not slowed)
	args := src.Args(a.rtmp("live/hprimary"))
	for i, arg := range args {
		if arg == "-c:v" {
			args = append(args[:i:i], append([]string{"-vf", `select='lt(t\,6)+not(mod(n\,5))'`, "-fps_mode", "passthrough"}, args[i:]...)...)
			break
		}
	}
	primary := exec.CommandContext(ctx, "ffmpeg", args...)
	if err := primary.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); primary.Wait() }()
	testmedia.Publish(t, ctx, src, a.rtmp("live/hfbackup"))
	testmedia.Eventually(t, 10*time.Second, "the flow plays the primary", func() bool {
		send(t, "GET", a.api("/v1/flows/hf"), nil, &v)
		return v.Status != nil && v.Status.Active == "primary" && len(v.Status.Sources) == 2
	})
	testmedia.Eventually(t, 30*time.Second, "the flow switches to the backup", func() bool {
		send(t, "GET", a.api("/v1/flows/hf"), nil, &v)
		return v.Status != nil && v.Status.Active == "backup"
	})
	if v.Status.Last == nil || v.Status.Last.Reason != "health: framerate" {
		t.Errorf("last switch %+v, want reason %q", v.Status.Last, "health: framerate")
	}
	if u := v.Status.Sources[0].Unhealthy; !strings.Contains(u, "frames/s") {
		t.Errorf("the primary's status says unhealthy %q, want the frame rate rule's detail", u)
	}
	var logged string
	for _, l := range testmedia.Lines(a.logs.String()) {
		if strings.Contains(l, `"flow source unhealthy`) {
			logged = l
		}
	}
	if !strings.Contains(logged, `"rule":"framerate"`) {
		t.Errorf("no log line names the rule that fired: %q", logged)
	}
	resp, err := http.Get(a.api("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `relaymesh_flow_switches_total{reason="health: framerate"} 1`) {
		t.Errorf("the metrics do not count the health switch")
	}
	t.Logf("switch %+v; primary: %s", *v.Status.Last, v.Status.Sources[0].Unhealthy)
	// the primary stays thin: no return to it
	testmedia.Eventually(t, 10*time.Second, "the backup stays active with the primary still unhealthy", func() bool {
		send(t, "GET", a.api("/v1/flows/hf"), nil, &v)
		return v.Status.Active == "backup" && v.Status.Sources[0].Unhealthy != ""
	})
}

// healthView is what the health tests read of a flow.
type healthView struct {
	Status *struct {
		Active  string `json:"active_source"`
		Sources []struct {
			Name      string `json:"name"`
			Unhealthy string `json:"unhealthy"`
		} `json:"sources"`
		Last *struct {
			From, To, Reason string
		} `json:"last_switch"`
	} `json:"status"`
}

// startHealthFlow starts an agent and on it flow id with source primary,
// the backup rtmp-push live/<id>backup and an httpflv output (skipped in
// -short: the tests publish in real time).
func startHealthFlow(t *testing.T, id string, primary map[string]any, v *healthView) *agentProc {
	t.Helper()
	if testing.Short() {
		t.Skip("real-time publishers for up to 20 s")
	}
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "")
	body := map[string]any{"id": id, "source": primary,
		"backup":  map[string]any{"type": "rtmp-push", "stream": "live/" + id + "backup"},
		"outputs": []any{map[string]any{"name": "web", "type": "httpflv"}}}
	if st := send(t, "POST", a.api("/v1/flows"), body, v); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if st := send(t, "POST", a.api("/v1/flows/"+id+"/start"), nil, v); st != 200 {
		t.Fatalf("start: %d", st)
	}
	return a
}

// TestFlowHealthBitrateFloor: a flow source's min_bitrate is enforced.
// The primary publishes about 170 kbit/s (100k video, 64k audio) under
// a 600 kbit/s floor; the backup 2 Mbit/s CBR. The flow leaves the
// primary for the backup, the switch and the primary's status name the
// bitrate rule, and it stays on the backup.
func TestFlowHealthBitrateFloor(t *testing.T) {
	var v healthView
	a := startHealthFlow(t, "hb", map[string]any{"type": "rtmp-push", "stream": "live/hbprimary", "min_bitrate": 600_000}, &v)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	thin := testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second, Bitrate: "100k"}.Defaults()
	testmedia.Publish(t, ctx, thin, a.rtmp("live/hbprimary"))
	testmedia.Publish(t, ctx, testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second, Bitrate: "2M", CBR: true}.Defaults(), a.rtmp("live/hbbackup"))
	testmedia.Eventually(t, 30*time.Second, "the flow switches to the backup", func() bool {
		send(t, "GET", a.api("/v1/flows/hb"), nil, &v)
		return v.Status != nil && v.Status.Active == "backup" && v.Status.Last != nil
	})
	if v.Status.Last.Reason != "health: bitrate" {
		t.Errorf("last switch %+v, want reason %q", v.Status.Last, "health: bitrate")
	}
	if u := v.Status.Sources[0].Unhealthy; !strings.Contains(u, "below its min_bitrate 600000") {
		t.Errorf("the primary's status says unhealthy %q, want the bitrate rule's detail", u)
	}
	t.Logf("switch %+v; primary: %s", *v.Status.Last, v.Status.Sources[0].Unhealthy)
	testmedia.Eventually(t, 10*time.Second, "the backup stays active with the primary still unhealthy", func() bool {
		send(t, "GET", a.api("/v1/flows/hb"), nil, &v)
		return v.Status.Active == "backup" && strings.Contains(v.Status.Sources[0].Unhealthy, "min_bitrate")
	})
}
