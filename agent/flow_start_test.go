package agent_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowAudioOnlyFromStart: an audio-only publish into a flow, RTMP
// (ffmpeg's onMetaData names no video codec) and SRT (its PMT lists only
// AAC), reaches a player of the flow's output from its first AAC frame:
// the player, there before the publisher, receives every frame published,
// and the flow's status shows what the source declared. Without the
// declarations the RTMP flow waited 2 s for video and dropped 97 frames,
// and the SRT one never started: its audio comes in PES bursts with gaps
// over the silence limit, each of which restarted the 2 s wait.
func TestFlowAudioOnlyFromStart(t *testing.T) {
	if testing.Short() {
		t.Skip("a real-time publisher")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	a := startAgent(t, "")
	for _, c := range []struct {
		name, typ, format string
	}{
		{"rtmp", flow.SrcRTMPPush, "flv"},
		{"srt", flow.SrcSRTListener, "mpegts"},
	} {
		t.Run(c.name, func(t *testing.T) { audioOnlyFlow(t, a, c.name, c.typ, c.format) })
	}
}

// audioOnlyFlow is one publisher of TestFlowAudioOnlyFromStart: a flow
// "ao-"+name with a source of type typ, published in format.
func audioOnlyFlow(t *testing.T, a *agentProc, name, typ, format string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// what is published, counted before it is
	file := filepath.Join(t.TempDir(), "sine."+format)
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
		"-vn", "-c:a", "aac", "-b:a", "64k", "-f", format, "-y", file).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg encode: %v\n%s", err, out)
	}
	sent, err := testmedia.Analyze(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if sent.VideoFrames != 0 || sent.AudioFrames < 250 {
		t.Fatalf("the published file has %d video and %d audio frames, want 0 and ~282", sent.VideoFrames, sent.AudioFrames)
	}

	id, key := "ao-"+name, "live/ao-"+name
	flows := startFlow(t, ctx, a, flow.Spec{ID: id, Source: flow.Source{Type: typ, Stream: key},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}})
	// the player of the flow's output, there before the publisher; it
	// ends when the flow is stopped
	type read struct {
		res testmedia.Result
		err error
	}
	got := make(chan read, 1)
	go func() {
		res, err := testmedia.Read(ctx, a.flv("flow/"+id), 60*time.Second)
		got <- read{res, err}
	}()
	testmedia.Eventually(t, 15*time.Second, "the player reading the flow", func() bool {
		streams, err := a.Client().Streams(ctx)
		if err != nil {
			t.Fatalf("GET /v1/streams: %v", err)
		}
		for _, s := range streams {
			if s.Name == "flow/"+id && len(s.Readers) > 0 {
				return true
			}
		}
		return false
	})

	url := a.rtmp(key)
	if format == "mpegts" {
		// linger: a live-mode SRT caller otherwise drops what it has not
		// sent yet when it closes (the end of the file, not the start)
		url = a.srtURL("publish:"+key, "linger=3")
	}
	pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re", "-i", file,
		"-c", "copy", "-f", format, url)
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	v, err := flows.Get(ctx, id)
	if err != nil {
		t.Fatalf("GET flow %s: %v", id, err)
	}
	if v.Status == nil || len(v.Status.Sources) == 0 || v.Status.Sources[0].Declares != "audio only" {
		t.Errorf("the flow's status %+v, want its source to declare audio only", v.Status)
	}
	// /v1/streams counts the audio-only stream's audio frames apart from
	// its video frames (0; frames and fps count video). The publisher has
	// exited; its last frames may still be on their way into the flow.
	var last string
	testmedia.Eventually(t, 10*time.Second, "/v1/streams to count every published frame as an audio frame", func() bool {
		streams, err := a.Client().Streams(ctx)
		if err != nil {
			t.Fatalf("GET /v1/streams: %v", err)
		}
		last = "not listed"
		for _, s := range streams {
			if s.Name == "flow/"+id {
				last = fmt.Sprintf("%d audio frames, %d frames, fps %.1f", s.AudioFrames, s.Frames, s.FPS)
				if s.Frames != 0 || s.FPS != 0 {
					t.Fatalf("/v1/streams shows flow/%s with %s, want frames and fps 0", id, last)
				}
				return s.AudioFrames == int64(sent.AudioFrames)
			}
		}
		return false
	})
	t.Logf("/v1/streams: flow/%s has %s", id, last)
	if _, err := flows.Do(ctx, id, "stop"); err != nil {
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
