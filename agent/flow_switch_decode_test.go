package agent_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowSwitchDecodes: a player of a flow whose primary (640 px) stalls
// mid-GOP while it plays gets the backup (320 px, other parameter sets)
// and then the primary again without one decode error: the switch enters the backup at its keyframe
// with the backup's own SPS/PPS, also for a player that keeps only the
// first sequence header (ffmpeg -c copy into a file, as testmedia.Read).
func TestFlowSwitchDecodes(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	a := startAgent(t, "")
	ctx := context.Background()
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "sw",
		Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/main"},
		Backup:  &flow.Source{Type: flow.SrcRTMPPush, Stream: "live/bak"},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(ctx, "sw", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	main := testmedia.Source{Realtime: true, Audio: true, Duration: 20 * time.Second, Width: 640, Height: 360}.Defaults()
	bak := testmedia.Source{Realtime: true, Audio: true, Duration: 20 * time.Second, Width: 320, Height: 180}.Defaults()
	primary := testmedia.Publish(t, ctx, main, a.rtmp("live/main"))
	testmedia.Publish(t, ctx, bak, a.rtmp("live/bak"))
	waitVideo(t, a, "flow/sw")
	type readRes struct {
		r   testmedia.Result
		err error
	}
	rc := make(chan readRes, 1)
	go func() {
		r, err := testmedia.Read(ctx, a.flv("flow/sw"), 8*time.Second)
		rc <- readRes{r, err}
	}()
	waitSent(t, a, "flow/sw", 150_000) // the player plays the primary, mid-GOP
	// the primary stalls (as a loaded publisher does) and resumes: the
	// flow fails over to the backup and returns at a primary keyframe
	if err := primary.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var v flow.View
	getFlow := func() {
		var err error
		if v, err = flows.Get(ctx, "sw"); err != nil {
			t.Fatalf("GET flow sw: %v", err)
		}
	}
	testmedia.Eventually(t, 5*time.Second, "switch to the backup", func() bool {
		getFlow()
		return v.Status != nil && v.Status.Active == "backup"
	})
	if err := primary.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testmedia.Eventually(t, 10*time.Second, "switch back to the primary", func() bool {
		getFlow()
		return v.Status != nil && v.Status.Active == "primary"
	})
	res := <-rc
	if res.err != nil {
		t.Fatalf("player: %v", res.err)
	}
	t.Logf("player across %d switches (last %+v): %+v", v.Status.Switches, v.Status.Last, res.r)
	if res.r.VideoCodec != "h264" || res.r.VideoFrames < 100 || res.r.Keyframes < 2 || res.r.DecodeErrors != "" {
		t.Errorf("player across 640 -> 320 -> 640 px switches: %+v, want h264, >= 100 frames, both sources' keyframes, no decode errors", res.r)
	}
}
