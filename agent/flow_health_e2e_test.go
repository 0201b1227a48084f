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
	if testing.Short() {
		t.Skip("real-time publishers for 20 s")
	}
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "")
	flowBody := map[string]any{"id": "hf",
		"source":  map[string]any{"type": "rtmp-push", "stream": "live/hprimary"},
		"backup":  map[string]any{"type": "rtmp-push", "stream": "live/hbackup"},
		"outputs": []any{map[string]any{"name": "web", "type": "httpflv"}}}
	var v struct {
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
	if st := send(t, "POST", a.api("/v1/flows"), flowBody, &v); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if st := send(t, "POST", a.api("/v1/flows/hf/start"), nil, &v); st != 200 {
		t.Fatalf("start: %d", st)
	}
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
	testmedia.Publish(t, ctx, src, a.rtmp("live/hbackup"))
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
