package agent_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowAudioOnlyFromStart: an audio-only RTMP publish (ffmpeg: its
// onMetaData names no video codec) into a flow reaches a player of the
// flow's output from its first AAC frame: the player, there before the
// publisher, receives every frame published (before, the flow waited 2 s
// for video and dropped ~94 frames), and the flow's status shows what the
// source declared.
func TestFlowAudioOnlyFromStart(t *testing.T) {
	if testing.Short() {
		t.Skip("a real-time publisher")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// what is published, counted before it is
	file := filepath.Join(t.TempDir(), "sine.flv")
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
		"-vn", "-c:a", "aac", "-b:a", "64k", "-f", "flv", "-y", file).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg encode: %v\n%s", err, out)
	}
	sent, err := testmedia.Analyze(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if sent.VideoFrames != 0 || sent.AudioFrames < 250 {
		t.Fatalf("the published file has %d video and %d audio frames, want 0 and ~282", sent.VideoFrames, sent.AudioFrames)
	}

	a := startAgent(t, "")
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "ao", Source: flow.Source{Type: flow.SrcRTMPPush, Stream: "live/ao"},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(ctx, "ao", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	// the player of the flow's output, there before the publisher; it
	// ends when the flow is stopped
	type read struct {
		res testmedia.Result
		err error
	}
	got := make(chan read, 1)
	go func() {
		res, err := testmedia.Read(ctx, a.flv("flow/ao"), 60*time.Second)
		got <- read{res, err}
	}()
	testmedia.Eventually(t, 15*time.Second, "the player reading flow/ao", func() bool {
		streams, err := a.Client().Streams(ctx)
		if err != nil {
			t.Fatalf("GET /v1/streams: %v", err)
		}
		for _, s := range streams {
			if s.Name == "flow/ao" && len(s.Readers) > 0 {
				return true
			}
		}
		return false
	})

	pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re", "-i", file,
		"-c", "copy", "-f", "flv", a.rtmp("live/ao"))
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	v, err := flows.Get(ctx, "ao")
	if err != nil {
		t.Fatalf("GET flow ao: %v", err)
	}
	if v.Status == nil || len(v.Status.Sources) == 0 || v.Status.Sources[0].Declares != "audio only" {
		t.Errorf("the flow's status %+v, want its source to declare audio only", v.Status)
	}
	if _, err := flows.Do(ctx, "ao", "stop"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	var r read
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the player did not end when the flow stopped")
	}
	if r.err != nil {
		t.Fatalf("player: %v", r.err)
	}
	t.Logf("published %d AAC frames, the flow's player received %d (%s, video %d)", sent.AudioFrames, r.res.AudioFrames, r.res.AudioCodec, r.res.VideoFrames)
	if r.res.AudioCodec != "aac" || r.res.VideoFrames != 0 {
		t.Errorf("the player got audio %q and %d video frames, want aac and none", r.res.AudioCodec, r.res.VideoFrames)
	}
	if r.res.AudioFrames != sent.AudioFrames {
		t.Errorf("the player received %d AAC frames of the %d published: %d missing", r.res.AudioFrames, sent.AudioFrames, sent.AudioFrames-r.res.AudioFrames)
	}
	if r.res.DecodeErrors != "" {
		t.Errorf("decode errors: %s", r.res.DecodeErrors)
	}
}
