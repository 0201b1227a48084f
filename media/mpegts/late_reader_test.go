package mpegts_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/testnode"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/srt"
)

// TestLateSRTReader: an SRT publisher sends the parameter sets only in
// front of its first keyframe (GStreamer's h264parse/h265parse default);
// an SRT reader that joins a few GOPs later gets the publisher's TS passed
// through and still decodes every frame it receives, from its first.
//
// GStreamer makes the stream and ffmpeg (libsrt) publishes it: srtsink
// itself drops mpegtsmux's header-flagged first keyframe, so with it the
// parameter sets never reach any server.
func TestLateSRTReader(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	const frames = 300 // 12 s at 25 fps, a keyframe every second
	for _, codec := range []string{"h264", "hevc"} {
		t.Run(codec, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.ts")
			if err := os.WriteFile(path, mpegts.OnceParamsTS(t, codec, frames), 0o644); err != nil {
				t.Fatal(err)
			}
			hc := media.DefaultHubConfig()
			hc.ReconnectGrace = 300 * time.Millisecond
			n := testnode.Start(t, testnode.Config{Name: "server", Hub: hc, SRT: &srt.Config{}})
			key := "live/once-" + codec
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", path,
				"-c", "copy", "-f", "mpegts", n.SRTBase()+"?streamid=publish:"+key)
			var stderr testmedia.LogBuffer
			pub.Stderr = &stderr
			if err := pub.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- pub.Wait() }()
			t.Cleanup(func() {
				cancel()
				<-done
				if t.Failed() {
					t.Logf("publisher stderr: %s", stderr.String())
				}
			})

			// join after three GOPs
			testmedia.Eventually(t, 20*time.Second, "three GOPs published", func() bool {
				s := n.Hub.Stream(key)
				return s != nil && s.Meter.Rates().Frames >= 75
			})
			res, err := testmedia.Read(ctx, n.SRTBase()+"?streamid=read:"+key, 3*time.Second)
			if err != nil {
				t.Fatalf("late reader: %.2000v", err)
			}
			t.Logf("late reader: %+v", res)
			if res.VideoCodec != codec || res.Width != 320 || res.Height != 240 {
				t.Errorf("late reader: %s %dx%d, want %s 320x240", res.VideoCodec, res.Width, res.Height, codec)
			}
			if !res.FirstKey {
				t.Errorf("late reader: the first frame is not a keyframe")
			}
			if res.VideoFrames < 25 || res.Keyframes < 1 {
				t.Errorf("late reader: %d frames (%d keyframes), want a GOP at least", res.VideoFrames, res.Keyframes)
			}
			if res.DecodeErrors != "" {
				t.Errorf("late reader: decode errors:\n%.2000s", res.DecodeErrors)
			}
		})
	}
}
