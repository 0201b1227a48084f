package agent_test

import (
	"context"
	"fmt"
	"os/exec"
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
// backup, and for the 8 s after the switch (eight times the return hold)
// the flow stays on the backup with the primary marked unhealthy and no
// further switch.
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
	testmedia.Eventually(t, 30*time.Second, "the flow switches to the backup", func() bool { return get().Active == "backup" })
	if got := strings.Join(seen, " -> "); got != "primary -> backup" {
		t.Errorf("the flow's active source went %s, want primary -> backup", got)
	}
	hook := sink.WaitFor(t, 10*time.Second, "stream.failover", map[string]any{"flow": "hf"})
	if want := map[string]any{"stream": "flow/hf", "from": "primary", "to": "backup", "direction": "primary->backup", "reason": "health: framerate"}; !agent.HookMatches(hook.Data, want) {
		t.Errorf("stream.failover = %v, want %v", hook.Data, want)
	}
	st := v.Status
	if st.Last == nil || st.Last.Reason != "health: framerate" || !st.Last.Failover || st.Switches != 1 {
		t.Errorf("status after the switch: last %+v, %d switches; want one failover for health: framerate", st.Last, st.Switches)
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
		if st.Active != "backup" || len(st.Sources) != 2 || st.Sources[0].Unhealthy == "" || st.Switches != 1 {
			t.Fatalf("%s after the switch: active %q, %d switches, primary unhealthy %q; want the backup, 1 switch, the primary unhealthy",
				time.Since(switched).Round(time.Millisecond), st.Active, st.Switches, st.Sources[0].Unhealthy)
		}
		return time.Since(switched) >= hold
	})
	if hooks := sink.Hooks(t, "stream.failover"); len(hooks) != 1 {
		t.Errorf("%d stream.failover webhooks, want the one failover: %v", len(hooks), sink.Lines(t))
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
