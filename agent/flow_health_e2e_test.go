package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/relaymesh/relaymesh/agent"
	"github.com/relaymesh/relaymesh/flow"
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
	h := startHealthFlow(t, "hf", flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hprimary"})
	a, sink, ctx := h.a, h.sink, h.ctx
	src := testmedia.Source{Audio: true, Duration: 40 * time.Second}
	dir := t.TempDir()
	// the primary: the same source, its video thinned to every fifth
	// frame after 6 s (timestamps kept: the frames are gone, not slowed)
	thin := encodeAhead(t, ctx, dir, "primary", src, "-vf", `select='lt(t\,6)+not(mod(n\,5))'`, "-fps_mode", "passthrough")
	full := encodeAhead(t, ctx, dir, "backup", src)
	publishAhead(t, ctx, full, "flv", a.rtmp(h.backup))
	publishAhead(t, ctx, thin, "flv", a.rtmp("live/hprimary"))

	// every state a poll of the flow showed, in order, without repeats
	var seen []string
	get := func() *flow.Status {
		st := h.get()
		if n := len(seen); n == 0 || seen[n-1] != st.Active {
			seen = append(seen, st.Active)
		}
		return st
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
	st := get()
	switches := st.Switches // those of a stalled publisher included
	if st.Last == nil || st.Last.Reason != "health: framerate" || !st.Last.Failover || switches != len(hooks) {
		t.Errorf("status after the switch: last %+v, %d switches; want the last a failover for health: framerate, %d switches as the webhooks say", st.Last, switches, len(hooks))
	}
	ruleNamed(t, a, st, "framerate", "frames/s")
	t.Logf("switch %+v; primary: %s", *st.Last, st.Sources[0].Unhealthy)

	// the primary stays thin: the flow stays on the backup on every poll
	// of the hold, and no other switch is reported
	flowHolds(t, 8*time.Second, "the flow on the backup after the switch", get, onBackup(switches, "frames/s"))
	if after := sink.Hooks(t, "stream.failover"); len(after) != len(hooks) {
		t.Errorf("%d switch webhooks after the hold, want %d (no switch after the frame rate failover): %v", len(after), len(hooks), sink.Lines(t))
	}
}

// healthFlow is an agent (its webhooks to sink) running flow id of the
// health tests: a primary, a backup (rtmp-push at backup) and an
// HTTP-FLV output.
type healthFlow struct {
	a      *agentProc
	sink   *agent.HookSink
	ctx    context.Context
	id     string
	backup string
	get    func() *flow.Status
}

// startHealthFlow skips in -short (real-time publishers), needs ffmpeg,
// and starts the agent and flow id with primary.
func startHealthFlow(t *testing.T, id string, primary flow.Source) healthFlow {
	t.Helper()
	if testing.Short() {
		t.Skip("real-time publishers for 20 s")
	}
	testmedia.Need(t, "ffmpeg")
	h := healthFlow{sink: agent.NewHookSink(t), id: id, backup: "live/" + id + "backup"}
	h.a = startAgent(t, h.sink.Config())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.ctx = ctx
	flows := startFlow(t, ctx, h.a, flow.Spec{ID: id, Source: primary,
		Backup:  &flow.Source{Type: flow.SrcRTMPPush, Stream: h.backup},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}})
	h.get = flowStatus(t, ctx, flows, id)
	return h
}

// failedOver waits for the flow's stream.failover webhook from the
// primary to the backup for "health: "+rule and for its status to show
// that switch, and returns the status.
func (h healthFlow) failedOver(t *testing.T, rule string) *flow.Status {
	t.Helper()
	sink, get := h.sink, h.get
	want := map[string]any{"stream": "flow/" + h.id, "from": "primary", "to": "backup", "direction": "primary->backup", "reason": "health: " + rule}
	testmedia.Eventually(t, 30*time.Second, "the flow to fail over for "+rule, func() bool {
		for _, h := range sink.Hooks(t, "stream.failover") {
			if agent.HookMatches(h.Data, want) {
				return true
			}
		}
		return false
	})
	var st *flow.Status
	testmedia.Eventually(t, 5*time.Second, "the status to show the switch", func() bool {
		st = get()
		return st.Active == "backup" && st.Last != nil && len(st.Sources) == 2
	})
	if st.Last.Reason != "health: "+rule || !st.Last.Failover {
		t.Errorf("last switch %+v, want a failover for health: %s", st.Last, rule)
	}
	if hooks := sink.Hooks(t, "stream.failover"); len(hooks) != st.Switches {
		t.Errorf("%d switches in the status, %d webhooks: %v", st.Switches, len(hooks), sink.Lines(t))
	}
	return st
}

// ruleNamed checks that the flow's switch away from its primary for a
// health rule is named where an operator looks: the primary's status
// (unhealthy: detail), the log (the rule) and the metrics (one switch
// for "health: "+rule); it returns the scrape.
func ruleNamed(t *testing.T, a *agentProc, st *flow.Status, rule, detail string) map[string]*dto.MetricFamily {
	t.Helper()
	if u := st.Sources[0].Unhealthy; !strings.Contains(u, detail) {
		t.Errorf("the primary's status says unhealthy %q, want the %s rule's detail (%s)", u, rule, detail)
	}
	var logged string
	for _, l := range testmedia.Lines(a.logs.String()) {
		if strings.Contains(l, `"flow source unhealthy`) {
			logged = l
		}
	}
	if !strings.Contains(logged, `"rule":"`+rule+`"`) {
		t.Errorf("no log line names the rule that fired (%s): %q", rule, logged)
	}
	mfs, err := promtest.TryScrape(a.api("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := promtest.Value(mfs, "relaymesh_flow_switches_total", map[string]string{"reason": "health: " + rule}); n != 1 {
		t.Errorf("relaymesh_flow_switches_total{reason=\"health: %s\"} = %v, want 1", rule, n)
	}
	return mfs
}

// onBackup is flowHolds' check of a flow that failed over for a health
// rule: the backup active, the primary unhealthy with a detail that
// contains detail, and no switch since the switches of then.
func onBackup(switches int, detail string) func(*flow.Status) string {
	return func(st *flow.Status) string {
		if st.Active != "backup" || len(st.Sources) != 2 || !strings.Contains(st.Sources[0].Unhealthy, detail) || st.Switches != switches {
			u := ""
			if len(st.Sources) > 0 {
				u = st.Sources[0].Unhealthy
			}
			return fmt.Sprintf("active %q, %d switches, primary unhealthy %q; want the backup, %d switches, the primary unhealthy (%s)",
				st.Active, st.Switches, u, switches, detail)
		}
		return ""
	}
}

// TestFlowHealthBitrateFloor: a flow source's min_bitrate is enforced.
// The primary publishes about 170 kbit/s (100k video, 64k audio) under
// a 600 kbit/s floor; the backup 2 Mbit/s CBR. The flow leaves the
// primary for the backup, the switch and the primary's status name the
// bitrate rule, and it stays on the backup: every poll of the 8 s after
// the switch sees the backup active, the primary unhealthy and no other
// switch.
func TestFlowHealthBitrateFloor(t *testing.T) {
	h := startHealthFlow(t, "hb", flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hbprimary", MinBitrate: 600_000})
	a, ctx, get := h.a, h.ctx, h.get
	thin := testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second, Bitrate: "100k"}.Defaults()
	testmedia.Publish(t, ctx, thin, a.rtmp("live/hbprimary"))
	testmedia.Publish(t, ctx, testmedia.Source{Audio: true, Realtime: true, Duration: 40 * time.Second, Bitrate: "2M", CBR: true}.Defaults(), a.rtmp(h.backup))
	var st *flow.Status
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
	// the primary stays thin: every poll of the hold sees the backup, the
	// primary unhealthy and no further switch
	flowHolds(t, 8*time.Second, "the flow on the backup after the switch", get, onBackup(st.Switches, "min_bitrate"))
}

// TestFlowHealthContinuity: a flow's primary is an SRT publisher
// (srt-live-transmit) whose MPEG-TS loses every 80th TS packet after its
// first 6 s, as behind a lossy UDP hop: it stays connected and keeps
// delivering. Its max_cc_errors is 5 (per 2 s). Until the damage the
// flow plays it and its stream counts no continuity errors; then the flow
// fails over to the backup (RTMP) for reason health: continuity, which
// the stream.failover webhook, the flow's status, the log and
// relaymesh_flow_switches_total name; /v1/streams and
// relaymesh_stream_cc_errors_total count the errors (no more than the
// packets dropped); and for the 8 s after, the flow stays on the backup.
func TestFlowHealthContinuity(t *testing.T) {
	testmedia.Need(t, "srt-live-transmit")
	h := startHealthFlow(t, "hc", flow.Source{Type: flow.SrcSRTListener, Stream: "live/hcprimary", MaxCCErrors: 5})
	a, ctx, get := h.a, h.ctx, h.get
	file := encodeAhead(t, ctx, t.TempDir(), "source", testmedia.Source{Audio: true, Duration: 40 * time.Second})
	publishAhead(t, ctx, file, "flv", a.rtmp(h.backup))
	dropped := publishTSDamaged(t, ctx, file, srtURL(a.ports["srt"], "publish:live/hcprimary", "", 0, ""), 6*time.Second, 80)

	ccErrors := func() uint64 {
		s, err := a.Client().Stream(ctx, "live/hcprimary")
		if err != nil {
			t.Fatalf("GET stream live/hcprimary: %v", err)
		}
		return s.CCErrors
	}
	testmedia.Eventually(t, 10*time.Second, "the flow plays the primary", func() bool {
		st := get()
		return st.Active == "primary" && len(st.Sources) == 2 && st.Sources[0].LastPacket != nil
	})
	if n, d := ccErrors(), dropped.Load(); n != 0 || d != 0 {
		t.Fatalf("before the damage: %d continuity errors (%d packets dropped), want 0", n, d)
	}
	st := h.failedOver(t, "continuity")
	cc := ccErrors()
	if d := dropped.Load(); cc == 0 || cc > uint64(d) {
		t.Errorf("the primary's stream counts %d continuity errors after %d TS packets were dropped, want 1 to %d", cc, d, d)
	}
	mfs := ruleNamed(t, a, st, "continuity", "continuity errors in 2s, over its max_cc_errors 5")
	if n, _ := promtest.Value(mfs, "relaymesh_stream_cc_errors_total", map[string]string{"stream": "live/hcprimary"}); n < float64(cc) {
		t.Errorf("relaymesh_stream_cc_errors_total{stream=\"live/hcprimary\"} = %v, want at least the %d the API showed before", n, cc)
	}
	t.Logf("switch %+v; primary: %s; %d continuity errors counted, %d TS packets dropped", *st.Last, st.Sources[0].Unhealthy, cc, dropped.Load())
	flowHolds(t, 8*time.Second, "the flow on the backup after the switch", get, onBackup(st.Switches, "continuity errors"))
}

// TestFlowHealthFrozen: a flow's primary (RTMP) keeps sending its frames
// in real time, but from 6 s on every one carries the timestamp 6 s
// (ffmpeg's setts bitstream filter), as a stuck encoder clock does. The
// hub keeps each track's timeline increasing by 1 ms a packet, so the
// flow sees timestamps that crawl; the flow fails over to the backup for
// reason health: frozen (webhook, status, log, metric) and stays there.
// Before the rule compared against a quarter of the wall time it never
// fired: the crawl was taken for an advance.
func TestFlowHealthFrozen(t *testing.T) {
	h := startHealthFlow(t, "hz", flow.Source{Type: flow.SrcRTMPPush, Stream: "live/hzprimary"})
	a, ctx, get := h.a, h.ctx, h.get
	file := encodeAhead(t, ctx, t.TempDir(), "source", testmedia.Source{Audio: true, Duration: 40 * time.Second})
	publishAhead(t, ctx, file, "flv", a.rtmp(h.backup))
	freeze := `setts=ts=min(TS\,6/TB)`
	publishAhead(t, ctx, file, "flv", a.rtmp("live/hzprimary"), "-bsf:v", freeze, "-bsf:a", freeze)
	testmedia.Eventually(t, 10*time.Second, "the flow plays the primary", func() bool {
		st := get()
		return st.Active == "primary" && len(st.Sources) == 2 && st.Sources[0].LastPacket != nil
	})
	st := h.failedOver(t, "frozen")
	ruleNamed(t, a, st, "frozen", "timestamps advanced")
	t.Logf("switch %+v; primary: %s", *st.Last, st.Sources[0].Unhealthy)
	flowHolds(t, 8*time.Second, "the flow on the backup after the switch", get, onBackup(st.Switches, "timestamps advanced"))
}
