package unit_test

import (
	"bytes"
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Seed corpora live in testdata/fuzz/FuzzX/; the f.Add seeds below cover
// the shapes ffmpeg, OBS and gortmplib send.

// within reports whether sub is a slice of b's bytes (parsers must return
// views into the input, never bytes from elsewhere).
func within(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	return bytes.HasSuffix(b, sub) && &b[len(b)-len(sub)] == &sub[0]
}

func FuzzParseVideoTag(f *testing.F) {
	f.Add([]byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff})
	f.Add([]byte{0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 1, 0x41})
	f.Add([]byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0x28, 0, 0, 0, 1, 0x26})
	f.Add([]byte{0xa3, 'h', 'v', 'c', '1', 0, 0, 0, 1, 0x02})
	f.Add([]byte{0x92, 'a', 'v', 'c', '1'})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := unit.ParseVideoTag(b)
		if !ok {
			return
		}
		if len(b) < 5 {
			t.Fatalf("accepted a %d-byte video tag", len(b))
		}
		if !within(v.Data, b) {
			t.Fatalf("Data is not the tail of the input")
		}
		if v.CTS < -(1<<23) || v.CTS >= 1<<23 {
			t.Fatalf("CTS %d outside SI24", v.CTS)
		}
	})
}

func FuzzParseAudioTag(f *testing.F) {
	f.Add([]byte{0xaf, 0, 0x11, 0x90})
	f.Add([]byte{0xaf, 1, 0x21, 0x10})
	f.Add([]byte{0x2f, 0xff, 0xfb})
	f.Add([]byte{0x90, 'm', 'p', '4', 'a', 0x11, 0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := unit.ParseAudioTag(b)
		if !ok {
			return
		}
		if a.Codec == "" {
			t.Fatalf("accepted audio without a codec")
		}
		if !within(a.Data, b) {
			t.Fatalf("Data is not the tail of the input")
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	avc, aac := testmedia.FLVHeaders(f, "testdata/h264_aac_640x360.flv")
	hvcc := hevcRecord(f, "testdata/hevc_640x360.h265")
	f.Add(uint8(unit.KindVideo), avc)
	f.Add(uint8(unit.KindAudio), aac)
	f.Add(uint8(unit.KindVideo), cat([]byte{0x90, 'h', 'v', 'c', '1'}, hvcc))
	f.Add(uint8(unit.KindVideo), cat([]byte{0x1c, 0, 0, 0, 0}, hvcc))
	f.Add(uint8(unit.KindData), metaBody)
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		p := &unit.Packet{Kind: unit.Kind(kind), Header: true, Payload: b}
		prev := unit.CodecInfo{Video: "prev", Width: 1, Height: 2, Audio: "prev", SampleRate: 3, Channels: 4}
		ci, ok := unit.ParseHeader(p, prev)
		if !ok {
			if ci != prev {
				t.Fatalf("not a header but the info changed: %+v", ci)
			}
			return
		}
		if ci.Width < 0 || ci.Height < 0 || ci.SampleRate < 0 || ci.Channels < 0 {
			t.Fatalf("negative values: %+v", ci)
		}
		switch unit.Kind(kind) {
		case unit.KindVideo:
			if ci.Audio != prev.Audio || ci.SampleRate != prev.SampleRate || ci.Channels != prev.Channels {
				t.Fatalf("a video header changed the audio: %+v", ci)
			}
		case unit.KindAudio:
			if ci.Video != prev.Video || ci.Width != prev.Width || ci.Height != prev.Height {
				t.Fatalf("an audio header changed the video: %+v", ci)
			}
		default:
			t.Fatalf("kind %d accepted as a codec header", kind)
		}
	})
}
