package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowMaxBandwidth: max_bandwidth takes the console's 10, 20 or 50
// Mbit/s and refuses other values with the list; a source publishing 16
// Mbit/s into a flow with max_bandwidth 10 Mbit/s is cut, its publisher
// disconnected, and the flow says why.
func TestFlowMaxBandwidth(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16 Mbit/s publisher for a few seconds")
	}
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "")
	ctx := context.Background()
	flows := a.Client().Flows()
	spec := func(bw int64) flow.Spec {
		return flow.Spec{ID: "bw", MaxBandwidth: bw,
			Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/big"},
			Outputs: []flow.Output{{Name: "players", Type: flow.OutHTTPFLV}}}
	}
	_, err := flows.Create(ctx, spec(15_000_000))
	if err == nil {
		t.Fatalf("max_bandwidth 15M accepted, want 400 naming the choices")
	}
	if e := problem(t, err); e.Status != 400 || e.Field != "max_bandwidth" || !strings.Contains(e.Message, "10, 20 or 50 Mbit/s") {
		t.Fatalf("max_bandwidth 15M: %v, want 400 naming the choices", e)
	}
	if _, err := flows.Create(ctx, spec(10_000_000)); err != nil {
		t.Fatalf("create: %v", err)
	}
	v, err := flows.Do(ctx, "bw", "start")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	src := testmedia.Source{Realtime: true, Duration: 30 * time.Second, Bitrate: "16M", CBR: true}.Defaults()
	pub := testmedia.Publish(t, ctx, src, a.rtmp("live/big"))
	testmedia.Eventually(t, 15*time.Second, "source cut for the flow's max_bandwidth", func() bool {
		if v, err = flows.Get(ctx, "bw"); err != nil {
			t.Fatalf("GET flow bw: %v", err)
		}
		return v.Status != nil && strings.Contains(v.Status.Sources[0].Cut, "over the flow's max_bandwidth 10000000")
	})
	if !strings.Contains(v.Reason, `source "primary": measured`) || !strings.Contains(v.Reason, "max_bandwidth 10000000") {
		t.Errorf("flow reason %q does not say the source was cut for max_bandwidth", v.Reason)
	}
	if b := v.Status.Sources[0].Bitrate; b < 12_000_000 {
		t.Errorf("measured %d bit/s of a 16 Mbit/s source", b)
	}
	if err := pub.Wait(10 * time.Second); err == nil {
		t.Errorf("the cut publisher exited cleanly, want it disconnected")
	} else if strings.Contains(err.Error(), "still running") {
		t.Errorf("the cut publisher was not disconnected: %v", err)
	}
}

// TestFlowBackupTunnels: an output with url and backup_url sends the
// primary source's media to url and the backup source's media to
// backup_url, each to its own destination server, while both sources are
// live; the flow's player output keeps serving the failover-merged stream
// (the active primary). Both RTMP (rtmp-push) and SRT (srt-caller)
// outputs; the two sources differ in picture size so each destination
// shows whose media it got.
func TestFlowBackupTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("two real-time publishers and two destination nodes")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	// the destination nodes are on loopback, which the fetch policy denies by default
	a := startAgent(t, "[objects]\nfetch_allow = [\"127.0.0.1/32\"]\n")
	d1, d2 := startAgent(t, ""), startAgent(t, "")
	srtURL := func(p *agentProc, key string) string {
		return fmt.Sprintf("srt://127.0.0.1:%d?streamid=publish:%s", p.ports["srt"], key)
	}
	ctx := context.Background()
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "tun",
		Source: flow.Source{Type: flow.SrcRTMPPush, Stream: "live/main"},
		Backup: &flow.Source{Type: flow.SrcRTMPPush, Stream: "live/bak"},
		Outputs: []flow.Output{
			{Name: "cdn", Type: flow.OutRTMPPush, URL: d1.rtmp("dst/cdn"), BackupURL: d2.rtmp("dst/cdn")},
			{Name: "srt", Type: flow.OutSRTCaller, URL: srtURL(d1, "dst/srt"), BackupURL: srtURL(d2, "dst/srt")},
			{Name: "players", Type: flow.OutHTTPFLV},
		}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	v, err := flows.Do(ctx, "tun", "start")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	main := testmedia.Source{Realtime: true, Audio: true, Duration: 30 * time.Second, Width: 640, Height: 360}.Defaults()
	bak := testmedia.Source{Realtime: true, Audio: true, Duration: 30 * time.Second, Width: 320, Height: 180}.Defaults()
	testmedia.Publish(t, ctx, main, a.rtmp("live/main"))
	testmedia.Publish(t, ctx, bak, a.rtmp("live/bak"))
	testmedia.Eventually(t, 15*time.Second, "all four tunnels running", func() bool {
		if v, err = flows.Get(ctx, "tun"); err != nil {
			t.Fatalf("GET flow tun: %v", err)
		}
		if v.Status == nil {
			return false
		}
		for _, o := range v.Status.Outputs[:2] {
			if o.Push == nil || o.Push.State != "running" || o.BackupPush == nil || o.BackupPush.State != "running" {
				return false
			}
		}
		return true
	})
	reads := []struct {
		name  string
		url   string
		width int
	}{
		{"rtmp url gets the primary", d1.flv("dst/cdn"), 640},
		{"rtmp backup_url gets the backup", d2.flv("dst/cdn"), 320},
		{"srt url gets the primary", d1.flv("dst/srt"), 640},
		{"srt backup_url gets the backup", d2.flv("dst/srt"), 320},
		{"player output gets the merged stream (primary active)", a.flv("flow/tun"), 640},
	}
	results := make([]testmedia.Result, len(reads))
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, r := range reads {
		wg.Go(func() { results[i], errs[i] = testmedia.Read(ctx, r.url, 3*time.Second) })
	}
	wg.Wait()
	// Under load the primary publisher can stall past SilenceFailover and
	// the flow fails over (a true switch, with its reason): the player of
	// the merged stream then gets the backup from its keyframe, with its
	// own parameter sets in-band, so it must still decode without an
	// error; only its width may be the backup's.
	if v, err = flows.Get(ctx, "tun"); err != nil {
		t.Fatalf("GET flow tun: %v", err)
	}
	switched := v.Status != nil && v.Status.Switches > 0
	if switched {
		t.Logf("the flow switched %d times while the players read (last: %+v): the merged stream may show the backup", v.Status.Switches, v.Status.Last)
	}
	for i, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			res := results[i]
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if i == len(reads)-1 && switched && res.Width == 320 {
				r.width = 320
			}
			if res.Width != r.width || res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.VideoFrames < 40 || res.DecodeErrors != "" {
				t.Errorf("%s: %+v, want h264 %d px wide + aac, >= 40 frames, no decode errors", r.url, res, r.width)
			}
		})
	}
	if v.Status.Active != "primary" && !switched {
		t.Errorf("active source %q, want primary", v.Status.Active)
	}
}
