package media_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestMeterFrames: a stream's meter counts video frames (frames, fps) and
// audio frames (audio_frames) apart, so an audio-only stream shows how
// many audio frames came though its frames and fps are 0. The packets are
// ffmpeg's (an FLV file's tags published in the order of the file, the
// meter's clock following their timestamps); the counts are ffprobe's.
func TestMeterFrames(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	for _, c := range []struct {
		name  string
		input []string // ffmpeg's inputs and codecs
		video bool
	}{
		{name: "audio only", input: []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3", "-vn", "-c:a", "aac"}},
		{name: "video and audio", video: true, input: []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3",
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-shortest"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := ffmpegFLV(t, c.input...)
			wantAudio := probePackets(t, path, "a")
			wantVideo, wantKeys := 0, 0
			if c.video {
				wantVideo = probePackets(t, path, "v")
				wantKeys = probeKeyframes(t, path)
			}

			now := time.Unix(1_700_000_000, 0)
			h := newHub(t, func(cfg *media.HubConfig) { cfg.Clock = func() time.Time { return now } })
			p := publish(t, h, "live/meter")
			start := now
			for _, tag := range testmedia.FLVTags(t, path) {
				now = start.Add(time.Duration(tag.TS) * time.Millisecond)
				pkt, err := unit.TagPacket(unit.Kind(tag.Kind), tag.TS, tag.Body)
				if err != nil {
					t.Fatal(err)
				}
				if pkt != nil {
					write(t, p, pkt)
				}
			}
			now = now.Add(2 * time.Second) // the last second is whole
			st := h.Stream("live/meter")
			r := st.Meter.Rates()
			if r.AudioFrames != int64(wantAudio) {
				t.Errorf("audio frames %d, want %d (ffprobe's audio packets)", r.AudioFrames, wantAudio)
			}
			if r.Frames != int64(wantVideo) {
				t.Errorf("frames %d, want %d video frames", r.Frames, wantVideo)
			}
			if !c.video && r.FPS != 0 {
				t.Errorf("fps %.1f of an audio-only stream, want 0 (fps counts video frames)", r.FPS)
			}
			var hist, histVideo, keys int
			for _, s := range st.Meter.History(start, now, time.Second) {
				hist += s.AudioFrames
				histVideo += s.Frames
				keys += s.Keyframes
			}
			// the end of sequence ffmpeg writes last is neither a frame
			// nor a keyframe
			if keys != wantKeys {
				t.Errorf("the history counts %d keyframes, want %d", keys, wantKeys)
			}
			if hist != wantAudio || histVideo != wantVideo {
				t.Errorf("the history counts %d audio and %d video frames, want %d and %d", hist, histVideo, wantAudio, wantVideo)
			}
			t.Logf("%d audio frames, %d video frames, fps %.1f", r.AudioFrames, r.Frames, r.FPS)
		})
	}
}

// ffmpegFLV has ffmpeg write an FLV file of input (its inputs and
// codecs) and returns its path.
func ffmpegFLV(t *testing.T, input ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.flv")
	args := append(append([]string{"-v", "error", "-y"}, input...), "-f", "flv", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return path
}

// probePackets is ffprobe's count of the packets of path's first stream
// of type typ ("a", "v").
func probePackets(t *testing.T, path, typ string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", typ+":0", "-count_packets",
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n == 0 {
		t.Fatalf("ffprobe counts %q %s packets in %s", out, typ, path)
	}
	return n
}

// probeKeyframes is ffprobe's count of the keyframes of path's video.
func probeKeyframes(t *testing.T, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n := 0
	for _, l := range strings.Fields(string(out)) {
		if strings.HasPrefix(l, "K") {
			n++
		}
	}
	return n
}
