package mpegts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/unit"
)

// onceParamsPipeline is a GStreamer pipeline that encodes frames of video
// (25 fps, a keyframe every 25) and AAC into MPEG-TS with the parameter
// sets only in front of the first keyframe, as h264parse/h265parse with
// their default config-interval=0 send them. Codec "h264-repeated" has
// them before every keyframe instead. The caller appends the sink.
func onceParamsPipeline(codec string, frames int, live bool) []string {
	src := []string{"videotestsrc", "num-buffers=" + strconv.Itoa(frames), "is-live=" + strconv.FormatBool(live), "!",
		"video/x-raw,width=320,height=240,framerate=25/1", "!"}
	var enc []string
	switch codec {
	case "h264":
		// in avc form x264 keeps SPS/PPS out of band; h264parse puts
		// them in front of the first keyframe only
		enc = []string{"x264enc", "key-int-max=25", "speed-preset=ultrafast", "tune=zerolatency", "option-string=repeat-headers=0", "!",
			"video/x-h264,stream-format=avc", "!", "h264parse", "config-interval=0", "!", "video/x-h264,stream-format=byte-stream", "!"}
	case "h264-repeated":
		enc = []string{"x264enc", "key-int-max=25", "speed-preset=ultrafast", "tune=zerolatency", "!"}
	case "hevc":
		enc = []string{"x265enc", "key-int-max=25", "speed-preset=ultrafast", "tune=zerolatency", "option-string=repeat-headers=0", "!",
			"h265parse", "config-interval=0", "!"}
	}
	audio := []string{"audiotestsrc", "num-buffers=" + strconv.Itoa(frames*48000/25/1024), "is-live=" + strconv.FormatBool(live), "!",
		"audio/x-raw,rate=48000,channels=2", "!", "voaacenc", "!", "aacparse", "!", "mux."}
	out := append(append(src, enc...), "mux.")
	out = append(out, audio...)
	return append(out, "mpegtsmux", "name=mux", "!")
}

// gstTS writes what a onceParamsPipeline makes to a file and returns it.
func gstTS(t testing.TB, codec string, frames int) []byte {
	t.Helper()
	testmedia.Need(t, "gst-launch-1.0")
	path := filepath.Join(t.TempDir(), "in.ts")
	args := append([]string{"-q"}, onceParamsPipeline(codec, frames, false)...)
	args = append(args, "filesink", "location="+path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "gst-launch-1.0", args...).CombinedOutput(); err != nil {
		t.Fatalf("gst-launch-1.0: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// accessUnits reassembles the video PES packets of a TS byte stream (the
// PID whose PES carry stream id 0xE0) and returns each one's NAL unit
// types, parsed here independently of the Demuxer.
func accessUnits(t *testing.T, b []byte, hevc bool) [][]byte {
	t.Helper()
	vpid := -1
	var units [][]byte
	var pes []byte
	flush := func() {
		if len(pes) < 9 {
			return
		}
		es := pes[9+int(pes[8]):]
		var types []byte
		for _, n := range splitAnnexB(nil, es) {
			if hevc {
				types = append(types, n[0]>>1&0x3f)
			} else {
				types = append(types, n[0]&0x1f)
			}
		}
		units = append(units, types)
	}
	for ; len(b) >= PacketSize; b = b[PacketSize:] {
		pkt := b[:PacketSize]
		if pkt[0] != syncByte {
			t.Fatalf("lost TS sync")
		}
		pl := tsPayload(pkt)
		pusi := pkt[1]&0x40 != 0
		if vpid < 0 && pusi && len(pl) > 4 && pl[0] == 0 && pl[1] == 0 && pl[2] == 1 && pl[3] == 0xE0 {
			vpid = tsPID(pkt)
		}
		if tsPID(pkt) != vpid {
			continue
		}
		if pusi {
			flush()
			pes = pes[:0]
		}
		pes = append(pes, pl...)
	}
	flush()
	return units
}

func hasAll(types []byte, want ...byte) bool {
	for _, w := range want {
		found := false
		for _, t := range types {
			found = found || t == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestKeyframesGetParameterSets: from a publisher that sends the parameter
// sets once, the TS lane has them in front of every keyframe, with
// continuity counters intact, and a reader that joins at a later keyframe
// decodes every frame from there without an error.
func TestKeyframesGetParameterSets(t *testing.T) {
	needFFmpeg(t)
	const frames = 100 // 4 GOPs
	cases := []struct {
		codec  string
		hevc   bool
		params []byte // NAL unit types that must precede each keyframe
		key    func(types []byte) bool
	}{
		{"h264", false, []byte{7, 8}, func(ts []byte) bool { return hasAll(ts, 5) }},
		{"hevc", true, []byte{32, 33, 34}, func(ts []byte) bool {
			for _, t := range ts {
				if t >= 16 && t <= 23 {
					return true
				}
			}
			return false
		}},
	}
	for _, c := range cases {
		t.Run(c.codec, func(t *testing.T) {
			in := gstTS(t, c.codec, frames)
			keys, withParams := 0, 0
			for _, au := range accessUnits(t, in, c.hevc) {
				if c.key(au) {
					keys++
					if hasAll(au, c.params...) {
						withParams++
					}
				}
			}
			if keys < 3 || withParams != 1 {
				t.Fatalf("input has %d keyframes, %d with parameter sets; want >= 3 and 1 (the pipeline no longer reproduces the case)", keys, withParams)
			}

			lane := demuxAll(t, in, 1316).ts
			var all []byte
			var psi *unit.Packet
			late, seen := []byte(nil), 0
			for _, p := range lane {
				all = append(all, p.Payload...)
				if p.Header {
					psi = p
					continue
				}
				if p.Keyframe {
					seen++
					if seen == 2 { // a reader joining at the second keyframe
						late = append(late, psi.Payload...)
					}
				}
				if seen >= 2 {
					late = append(late, p.Payload...)
				}
			}
			for i, au := range accessUnits(t, all, c.hevc) {
				if c.key(au) && !hasAll(au, c.params...) {
					t.Errorf("keyframe access unit %d has NAL units %v, without %v", i, au, c.params)
				}
			}
			if n := ccErrors(all); n != 0 {
				t.Errorf("TS lane: %d continuity counter errors", n)
			}
			if n := ccErrors(late); n != 0 {
				t.Errorf("late reader's TS: %d continuity counter errors", n)
			}

			path := filepath.Join(t.TempDir(), "late.ts")
			if err := os.WriteFile(path, late, 0o644); err != nil {
				t.Fatal(err)
			}
			got := ffprobeFrames(t, path)
			if want := "320,240," + strconv.Itoa(frames-25); got[c.codec] != want {
				t.Errorf("late reader: ffprobe %s = %q, want %q (all: %v)", c.codec, got[c.codec], want, got)
			}
			out, _ := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
			if len(out) > 0 {
				t.Errorf("late reader: decode errors:\n%.2000s", out)
			}
		})
	}
}

// FuzzParamInject: whatever a keyframe group holds, inject returns whole
// TS packets, never fewer than it got, and leaves the packets of other
// PIDs as they were, in their order.
func FuzzParamInject(f *testing.F) {
	lane := demuxAll(f, readFile(f, "h264_aac.ts"), 1316).ts
	for _, p := range lane {
		if p.Keyframe {
			// the keyframe's first packets only: the fuzzer minimizes a
			// new input byte by byte, and a whole group takes it minutes
			f.Add(p.Payload[:min(len(p.Payload), 8*PacketSize)], []byte{0x67, 0x42, 0, 0x1e}, uint16(pidVideo))
			break
		}
	}
	f.Add(bytes.Repeat([]byte{0x47, 0x41, 0x00, 0x30, 0xb7}, 40), []byte{1}, uint16(pidVideo))
	f.Fuzz(func(t *testing.T, group, sps []byte, pid uint16) {
		// a copy: the engine's bytes must not be written to, and inject
		// renumbers its input in place
		group = append([]byte(nil), group[:len(group)/PacketSize*PacketSize]...)
		for i := 0; i < len(group); i += PacketSize {
			group[i] = syncByte
		}
		var fix paramFix
		in := append([]byte(nil), group...)
		out := fix.inject(group, int(pid&0x1fff), false, [3][]byte{nil, sps, {0x68}})
		if len(out)%PacketSize != 0 || len(out) < len(in) {
			t.Fatalf("%d bytes in, %d out", len(in), len(out))
		}
		others := func(b []byte) (o []byte) {
			for ; len(b) >= PacketSize; b = b[PacketSize:] {
				if tsPID(b) != int(pid&0x1fff) {
					o = append(o, b[:PacketSize]...)
				}
			}
			return o
		}
		if !bytes.Equal(others(in), others(out)) {
			t.Fatalf("packets of other PIDs changed")
		}
	})
}

// BenchmarkDemuxParamSets: the Demuxer's cost per frame for the same
// content with the parameter sets before every keyframe (passed through)
// and only before the first (put in front of the others by the Demuxer).
func BenchmarkDemuxParamSets(b *testing.B) {
	for _, c := range []string{"h264-repeated", "h264"} {
		b.Run(c, func(b *testing.B) {
			benchDemux(b, gstTS(b, c, 250), 250, "ns/video-frame")
		})
	}
}
