package rtmp_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/rtmpsniff"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/rtmp"
)

// gst runs gst-launch-1.0 with args until it exits or d passes and returns
// its output and error.
func gst(ctx context.Context, d time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "gst-launch-1.0", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// fileSize is the size of a file the test made.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestGStreamer: GStreamer's rtmp2 elements, which match the server's
// replies by message stream id, publish to and play from the server
// (through a proxy that records the chunk headers): every frame arrives
// and decodes, and every message the server sends on stream 1 says so in
// the spec's byte order.
func TestGStreamer(t *testing.T) {
	testmedia.Need(t, "gst-launch-1.0", "ffmpeg", "ffprobe")
	n := start(t, fastHub(), rtmp.Config{})
	sniff := rtmpsniff.Start(t, n.RTMP.Addr().String())
	via := "rtmp://" + sniff.Addr() + "/"
	ctx := context.Background()
	const frames = 150 // 6 s at 25 fps

	t.Run("rtmp2sink publishes", func(t *testing.T) {
		key := "live/gst-pub"
		// one keyframe: a reader that joins late still gets every frame
		// from the GOP cache
		done := make(chan error, 1)
		var out string
		go func() {
			var err error
			out, err = gst(ctx, 30*time.Second,
				"videotestsrc", "is-live=true", "num-buffers=150", "!", "video/x-raw,width=640,height=360,framerate=25/1", "!",
				"x264enc", "key-int-max=300", "speed-preset=ultrafast", "tune=zerolatency", "!", "h264parse", "!", "flvmux", "name=m", "streamable=true", "!",
				"rtmp2sink", "location="+via+key,
				"audiotestsrc", "is-live=true", "num-buffers=150", "samplesperbuffer=1920", "!", "audio/x-raw,rate=48000,channels=2", "!",
				"voaacenc", "!", "aacparse", "!", "m.")
			done <- err
		}()
		testmedia.Eventually(t, 15*time.Second, "GStreamer to publish "+key, func() bool {
			return n.Hub.Stream(key) != nil
		})
		res, err := testmedia.Read(ctx, n.RTMPURL(key), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("rtmp2sink: %v\n%s", err, out)
		}
		t.Logf("read back: %+v", res)
		if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.Width != 640 || res.Height != 360 {
			t.Errorf("read back %s %dx%d + %q, want h264 640x360 + aac", res.VideoCodec, res.Width, res.Height, res.AudioCodec)
		}
		if res.VideoFrames != frames {
			t.Errorf("read back %d video frames, want %d", res.VideoFrames, frames)
		}
		// all but the few the encoder sent before the keyframe, where the
		// server's GOP cache starts
		if want := frames * 48000 / 25 / 1024; res.AudioFrames < want*95/100 || res.AudioFrames > want+1 {
			t.Errorf("read back %d audio frames, want about %d", res.AudioFrames, want)
		}
		if res.NonMonotonic != 0 {
			t.Errorf("%d video timestamps did not increase", res.NonMonotonic)
		}
		// GStreamer's live timestamps jitter by a millisecond, and
		// ffmpeg's null muxer, timing frames in 1/25 s, then sees two in
		// one tick: it says so for GStreamer's own FLV file too
		for _, l := range testmedia.Lines(res.DecodeErrors) {
			if !strings.Contains(l, "non monotonically increasing dts to muxer") && !strings.HasPrefix(l, "Last message repeated") {
				t.Errorf("decode error: %s", l)
			}
		}
	})

	t.Run("rtmp2src plays", func(t *testing.T) {
		key := "live/gst-play"
		src := testmedia.Source{Audio: true, Realtime: true, Duration: 6 * time.Second, GOP: 300}.Defaults()
		pub := testmedia.Publish(t, ctx, src, n.RTMPURL(key))
		testmedia.Eventually(t, 10*time.Second, "ffmpeg to publish "+key, func() bool {
			return n.Hub.Stream(key) != nil
		})
		// decode in GStreamer; the raw frames, scaled down to 16x16 I420
		// (384 bytes) and the samples as mono S16 go to files whose sizes
		// count them
		dir := t.TempDir()
		vfile, afile := filepath.Join(dir, "video.yuv"), filepath.Join(dir, "audio.raw")
		out, err := gst(ctx, 30*time.Second,
			"rtmp2src", "location="+via+key, "!", "flvdemux", "name=d",
			"d.video", "!", "queue", "!", "h264parse", "!", "avdec_h264", "!", "videoscale", "!", "video/x-raw,width=16,height=16", "!",
			"videoconvert", "!", "video/x-raw,format=I420", "!", "filesink", "location="+vfile, "sync=false",
			"d.audio", "!", "queue", "!", "aacparse", "!", "avdec_aac", "!", "audioconvert", "!", "audio/x-raw,format=S16LE,channels=1", "!",
			"filesink", "location="+afile, "sync=false")
		if err != nil {
			t.Fatalf("rtmp2src: %v\n%.3000s", err, out)
		}
		video, samples := fileSize(t, vfile)/384, fileSize(t, afile)/2
		t.Logf("GStreamer decoded %d video frames, %d audio samples", video, samples)
		if video != int64(src.Frames()) {
			t.Errorf("GStreamer decoded %d video frames, want %d", video, src.Frames())
		}
		if want := int64(src.Duration.Seconds() * 48000); samples < want*95/100 {
			t.Errorf("GStreamer decoded %d audio samples, want about %d", samples, want)
		}
		if !strings.Contains(out, "Got EOS") {
			t.Errorf("the pipeline did not end with EOS at the end of the stream:\n%.3000s", out)
		}
		if err := pub.Wait(10 * time.Second); err != nil {
			t.Errorf("publisher: %v: %s", err, pub.Stderr)
		}
	})

	t.Run("message stream ids on the wire", func(t *testing.T) {
		if err := sniff.Err(); err != nil {
			t.Fatalf("proxy: %v", err)
		}
		var onStream1, media, clientMedia int
		for _, h := range sniff.Headers() {
			if !h.OnStream() {
				continue // protocol control and user control: stream 0
			}
			switch {
			case h.FromClient && h.Type != rtmpsniff.TypeCommand:
				// GStreamer's own media: shows the proxy reads the field
				// as a spec-abiding peer does
				clientMedia++
				if h.WrongStream() {
					t.Errorf("GStreamer sent media type %d on stream id bytes % x", h.Type, h.MSID)
				}
			case h.FromClient:
			case h.WrongStream():
				t.Errorf("server sent type %d on csid %d with stream id bytes % x (%d), want stream 1 as 01 00 00 00",
					h.Type, h.CSID, h.MSID, h.StreamID())
			case h.Type != rtmpsniff.TypeCommand:
				media++
			case h.StreamID() == 1:
				onStream1++
			}
		}
		if onStream1 < 2 || media < 100 || clientMedia < 2 {
			t.Errorf("saw %d server commands on stream 1, %d server media headers, %d client media headers; want the sessions above",
				onStream1, media, clientMedia)
		}
	})
}
