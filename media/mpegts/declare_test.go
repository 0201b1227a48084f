package mpegts

import (
	"os/exec"
	"testing"

	"github.com/relaymesh/relaymesh/media/unit"
)

// TestDemuxDeclaresTracks: the Demuxer declares the PMT's tracks in an
// onMetaData before its first FLV packet, stamped with that packet's time
// (a flow starts an audio-only source at once and waits for a video
// one's keyframe): video for H.264 and H.265 files, audio only for an
// AAC-only TS from ffmpeg.
func TestDemuxDeclaresTracks(t *testing.T) {
	cases := []struct {
		name string
		in   func(t *testing.T) []byte
		want unit.Tracks
	}{
		{"h264_aac.ts", func(t *testing.T) []byte { return readFile(t, "h264_aac.ts") }, unit.TracksVideo},
		{"h265_aac.ts", func(t *testing.T) []byte { return readFile(t, "h265_aac.ts") }, unit.TracksVideo},
		{"ffmpeg aac only", func(t *testing.T) []byte {
			if _, err := exec.LookPath("ffmpeg"); err != nil {
				t.Skip("ffmpeg not installed")
			}
			b, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
				"-c:a", "aac", "-f", "mpegts", "-").Output()
			if err != nil {
				t.Fatalf("ffmpeg: %v", err)
			}
			return b
		}, unit.TracksAudioOnly},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := demuxAll(t, c.in(t), 1316)
			if len(out.flv) < 2 {
				t.Fatalf("%d FLV packets", len(out.flv))
			}
			first := out.flv[0]
			if first.Kind != unit.KindData || !first.Header {
				t.Fatalf("the first FLV packet is %v (header %v), want onMetaData", first.Kind, first.Header)
			}
			if got := unit.DeclaredTracks(first.Payload); got != c.want {
				t.Errorf("declares %v, want %v", got, c.want)
			}
			if first.Time != out.flv[1].Time {
				t.Errorf("onMetaData at %d ms, the next packet at %d", first.Time, out.flv[1].Time)
			}
			if n := out.count(unit.KindData, true); n != 1 {
				t.Errorf("%d onMetaData, want one (the PMT did not change)", n)
			}
		})
	}
}
