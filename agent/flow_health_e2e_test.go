package agent_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/agent"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowHealthFailover: the primary publisher of a flow stays connected
// and keeps sending audio, but after 6 s its video drops to one frame in
// five (25 -> 5 fps). The flow fails over to the backup as for a dead
// source, once: the stream.failover webhook an operator gets, the flow's
// status and switch count, the log and the metrics name the rule that
// fired (framerate); every poll of the flow on the way saw primary, then
// backup (a silence switch of a publisher that stalled on a loaded
// machine before the rule fired is logged, not failed), and for the 8 s
// after the switch (eight times the return hold) the flow stays on the
// backup with the primary marked unhealthy and no further switch.
func TestFlowHealthFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publishers for 20 s")
	}
	testmedia.Need(t, "ffmpeg")
	sink := agent.NewHookSink(t)
	a := startAgent(t, sink.Config())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "hf",
		Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hprimary"},
		Backup:  &flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hbackup"},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(ctx, "hf", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	// Both sources are encoded ahead and published with -re -c copy: a
	// live x264 encoder on a loaded machine can stall for more than the
	// flow's 300 ms silence failover, which is not the rule under test.
	src := testmedia.Source{Audio: true, Duration: 40 * time.Second}.Defaults()
	dir := t.TempDir()
	encode := func(name string, vf ...string) string {
		path := filepath.Join(dir, name+".flv")
		args := src.Args(path)
		for i, arg := range args {
			if arg == "-c:v" && len(vf) > 0 {
				args = append(args[:i:i], append(vf, args[i:]...)...)
				break
			}
		}
		if out, err := exec.CommandContext(ctx, "ffmpeg", append([]string{"-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("encode %s: %v: %s", name, err, out)
		}
		return path
	}
	// the primary: the same source, its video thinned to every fifth
	// frame after 6 s (timestamps kept: the frames are gone, not slowed)
	thin := encode("primary", "-vf", `select='lt(t\,6)+not(mod(n\,5))'`, "-fps_mode", "passthrough")
	full := encode("backup")
	publish := func(path, url string) {
		p := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", path, "-c", "copy", "-f", "flv", url)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); p.Wait() })
	}
	publish(full, a.rtmp("live/hbackup"))
	publish(thin, a.rtmp("live/hprimary"))

	// every state a poll of the flow showed, in order, without repeats
	var v flow.View
	var seen []string
	get := func() *flow.Status {
		var err error
		if v, err = flows.Get(ctx, "hf"); err != nil {
			t.Fatalf("GET flow hf: %v", err)
		}
		if v.Status == nil {
			return &flow.Status{}
		}
		if n := len(seen); n == 0 || seen[n-1] != v.Status.Active {
			seen = append(seen, v.Status.Active)
		}
		return v.Status
	}
	testmedia.Eventually(t, 10*time.Second, "the flow plays the primary", func() bool {
		st := get()
		return st.Active == "primary" && len(st.Sources) == 2
	})
	rule := map[string]any{"stream": "flow/hf", "from": "primary", "to": "backup", "direction": "primary->backup", "reason": "health: framerate"}
	testmedia.Eventually(t, 30*time.Second, "the flow fails over for the frame rate", func() bool {
		get()
		for _, h := range sink.Hooks(t, "stream.failover") {
			if agent.HookMatches(h.Data, rule) {
				return true
			}
		}
		return false
	})
	testmedia.Eventually(t, 5*time.Second, "the status shows the backup", func() bool { return get().Active == "backup" })
	// A switch before the rule fired may only be the silence rule's (a
	// publisher that stalled on a loaded machine, and its return); the
	// frame rate failover is the last switch and there is one.
	hooks := sink.Hooks(t, "stream.failover")
	var before []string
	for i, h := range hooks {
		if agent.HookMatches(h.Data, rule) {
			if i != len(hooks)-1 {
				t.Errorf("switches after the frame rate failover: %v", sink.Lines(t))
			}
			break
		}
		before = append(before, fmt.Sprint(h.Data["reason"]))
		if r := fmt.Sprint(h.Data["reason"]); r != "silence" && r != "primary back" {
			t.Errorf("switch %v before the frame rate failover, want none or silence only", h.Data)
		}
	}
	if len(before) > 0 {
		t.Logf("before the rule fired the flow switched for %v (a stalled publisher): active went %s", before, strings.Join(seen, " -> "))
	} else if got := strings.Join(seen, " -> "); got != "primary -> backup" {
		t.Errorf("the flow's active source went %s, want primary -> backup", got)
	}
	st := v.Status
	switches := st.Switches // those of a stalled publisher included
	if st.Last == nil || st.Last.Reason != "health: framerate" || !st.Last.Failover || switches != len(hooks) {
		t.Errorf("status after the switch: last %+v, %d switches; want the last a failover for health: framerate, %d switches as the webhooks say", st.Last, switches, len(hooks))
	}
	if u := st.Sources[0].Unhealthy; !strings.Contains(u, "frames/s") {
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
	mfs, err := promtest.TryScrape(a.api("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := promtest.Value(mfs, "relaymesh_flow_switches_total", map[string]string{"reason": "health: framerate"}); n != 1 {
		t.Errorf("relaymesh_flow_switches_total{reason=\"health: framerate\"} = %v, want 1", n)
	}
	t.Logf("switch %+v; primary: %s", *st.Last, st.Sources[0].Unhealthy)

	// the primary stays thin: the flow stays on the backup on every poll
	// of the hold, and no other switch is reported
	const hold = 8 * time.Second
	switched := time.Now()
	poll.Until(t, hold+10*time.Second, fmt.Sprintf("%s on the backup after the switch", hold), func() bool {
		st := get()
		if st.Active != "backup" || len(st.Sources) != 2 || st.Sources[0].Unhealthy == "" || st.Switches != switches {
			t.Fatalf("%s after the switch: active %q, %d switches, primary unhealthy %q; want the backup, %d switches, the primary unhealthy",
				time.Since(switched).Round(time.Millisecond), st.Active, st.Switches, st.Sources[0].Unhealthy, switches)
		}
		return time.Since(switched) >= hold
	})
	if after := sink.Hooks(t, "stream.failover"); len(after) != len(hooks) {
		t.Errorf("%d switch webhooks after the hold, want %d (no switch after the frame rate failover): %v", len(after), len(hooks), sink.Lines(t))
	}
}

// TestFlowHealthBitrateFloor: a flow source's min_bitrate is enforced.
// The primary publishes about 170 kbit/s (100k video, 64k audio) under
// a 600 kbit/s floor; the backup 2 Mbit/s CBR. The flow leaves the
// primary for the backup, the switch and the primary's status name the
// bitrate rule, and it stays on the backup.
func TestFlowHealthBitrateFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publishers for 20 s")
	}
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "hb",
		Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hbprimary", MinBitrate: 600_000},
		Backup:  &flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hbbackup"},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(ctx, "hb", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	thin := testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second, Bitrate: "100k"}.Defaults()
	testmedia.Publish(t, ctx, thin, a.rtmp("live/hbprimary"))
	testmedia.Publish(t, ctx, testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second, Bitrate: "2M", CBR: true}.Defaults(), a.rtmp("live/hbbackup"))
	var st *flow.Status
	get := func() *flow.Status {
		v, err := flows.Get(ctx, "hb")
		if err != nil {
			t.Fatalf("GET flow hb: %v", err)
		}
		if v.Status == nil {
			return &flow.Status{}
		}
		return v.Status
	}
	testmedia.Eventually(t, 30*time.Second, "the flow switches to the backup", func() bool {
		st = get()
		return st.Active == "backup" && st.Last != nil && len(st.Sources) == 2
	})
	if st.Last.Reason != "health: bitrate" {
		t.Errorf("last switch %+v, want reason %q", st.Last, "health: bitrate")
	}
	if u := st.Sources[0].Unhealthy; !strings.Contains(u, "below its min_bitrate 600000") {
		t.Errorf("the primary's status says unhealthy %q, want the bitrate rule's detail", u)
	}
	t.Logf("switch %+v; primary: %s", *st.Last, st.Sources[0].Unhealthy)
	testmedia.Eventually(t, 10*time.Second, "the backup stays active with the primary still unhealthy", func() bool {
		st = get()
		return st.Active == "backup" && len(st.Sources) == 2 && strings.Contains(st.Sources[0].Unhealthy, "min_bitrate")
	})
}
