package unit_test

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/unit"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestParseTag: FLV video and audio tag bodies, legacy and Enhanced RTMP;
// the type of want says which parser reads the case.
func TestParseTag(t *testing.T) {
	rec := []byte{1, 0x64, 0, 0x1f, 0xff}
	nalu := []byte{0, 0, 0, 2, 0x65, 0x88}
	hvc1 := []byte("hvc1")
	asc := []byte{0x11, 0x90}
	cases := []struct {
		name string
		in   []byte
		ok   bool
		want any // unit.VideoTag or unit.AudioTag
	}{
		{"empty", nil, false, unit.VideoTag{}},
		{"legacy too short", []byte{0x17, 1, 0, 0}, false, unit.VideoTag{}},
		{"legacy AVC sequence header", cat([]byte{0x17, 0, 0, 0, 0}, rec), true,
			unit.VideoTag{Codec: "H264", Keyframe: true, Header: true, Data: rec}},
		{"legacy AVC keyframe", cat([]byte{0x17, 1, 0, 0, 0x28}, nalu), true,
			unit.VideoTag{Codec: "H264", Keyframe: true, CTS: 40, Data: nalu}},
		{"legacy AVC inter frame", cat([]byte{0x27, 1, 0, 0, 0}, nalu), true,
			unit.VideoTag{Codec: "H264", Data: nalu}},
		{"legacy AVC negative CTS", cat([]byte{0x27, 1, 0xff, 0xff, 0xd8}, nalu), true,
			unit.VideoTag{Codec: "H264", CTS: -40, Data: nalu}},
		{"legacy AVC largest CTS", []byte{0x27, 1, 0x7f, 0xff, 0xff}, true,
			unit.VideoTag{Codec: "H264", CTS: 0x7fffff, Data: []byte{}}},
		{"legacy AVC end of sequence", []byte{0x17, 2, 0, 0, 0}, true,
			unit.VideoTag{Codec: "H264", Keyframe: true, EOS: true, Data: []byte{}}},
		{"legacy HEVC (codec 12) header", cat([]byte{0x1c, 0, 0, 0, 0}, rec), true,
			unit.VideoTag{Codec: "H265", Keyframe: true, Header: true, Data: rec}},
		{"Enhanced too short", []byte{0x90, 'h', 'v', 'c'}, false, unit.VideoTag{}},
		{"Enhanced hvc1 SequenceStart", cat([]byte{0x90}, hvc1, rec), true,
			unit.VideoTag{Codec: "H265", Keyframe: true, Header: true, Data: rec}},
		{"Enhanced hvc1 CodedFrames key", cat([]byte{0x91}, hvc1, []byte{0, 0, 0x50}, nalu), true,
			unit.VideoTag{Codec: "H265", Keyframe: true, CTS: 80, Data: nalu}},
		{"Enhanced hvc1 CodedFrames negative CTS", cat([]byte{0xa1}, hvc1, []byte{0xff, 0xff, 0xff}, nalu), true,
			unit.VideoTag{Codec: "H265", CTS: -1, Data: nalu}},
		{"Enhanced CodedFrames without CTS", cat([]byte{0x91}, hvc1, []byte{0, 0}), false, unit.VideoTag{}},
		{"Enhanced hvc1 FramesX inter", cat([]byte{0xa3}, hvc1, nalu), true,
			unit.VideoTag{Codec: "H265", Data: nalu}},
		{"Enhanced hvc1 FramesX key", cat([]byte{0x93}, hvc1, nalu), true,
			unit.VideoTag{Codec: "H265", Keyframe: true, Data: nalu}},
		{"Enhanced hvc1 SequenceEnd", cat([]byte{0x92}, hvc1), true,
			unit.VideoTag{Codec: "H265", Keyframe: true, EOS: true, Data: []byte{}}},
		{"Enhanced avc1 SequenceStart", cat([]byte{0x90}, []byte("avc1"), rec), true,
			unit.VideoTag{Codec: "H264", Keyframe: true, Header: true, Data: rec}},
		{"Enhanced unknown FourCC", cat([]byte{0x93}, []byte("av01"), nalu), true,
			unit.VideoTag{Codec: "av01", Keyframe: true, Data: nalu}},
		{"audio: empty", nil, false, unit.AudioTag{}},
		{"audio: AAC without packet type", []byte{0xaf}, false, unit.AudioTag{}},
		{"audio: AAC sequence header", cat([]byte{0xaf, 0}, asc), true, unit.AudioTag{Codec: "AAC", Header: true, Data: asc}},
		{"audio: AAC raw", []byte{0xaf, 1, 0x21, 0x10}, true, unit.AudioTag{Codec: "AAC", Data: []byte{0x21, 0x10}}},
		{"audio: AAC header, empty config", []byte{0xaf, 0}, true, unit.AudioTag{Codec: "AAC", Header: true, Data: []byte{}}},
		{"audio: MP3", []byte{0x2f, 0xff, 0xfb}, true, unit.AudioTag{Codec: "MP3", Data: []byte{0xff, 0xfb}}},
		{"audio: other format", []byte{0x3f, 1, 2}, true, unit.AudioTag{Codec: "other", Data: []byte{1, 2}}},
		{"audio: Enhanced mp4a SequenceStart", cat([]byte{0x90}, []byte("mp4a"), asc), true, unit.AudioTag{Codec: "AAC", Header: true, Data: asc}},
		{"audio: Enhanced mp4a CodedFrames", []byte{0x91, 'm', 'p', '4', 'a', 9}, true, unit.AudioTag{Codec: "AAC", Data: []byte{9}}},
		{"audio: Enhanced Opus", []byte{0x91, 'O', 'p', 'u', 's', 9}, true, unit.AudioTag{Codec: "Opus", Data: []byte{9}}},
		{"audio: Enhanced too short", []byte{0x90, 'm', 'p', '4'}, false, unit.AudioTag{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got, want any
			var ok bool
			switch w := tc.want.(type) {
			case unit.VideoTag:
				var v unit.VideoTag
				v, ok = unit.ParseVideoTag(tc.in)
				v.Data, w.Data = nonNil(v.Data), nonNil(w.Data)
				got, want = v, w
			case unit.AudioTag:
				var a unit.AudioTag
				a, ok = unit.ParseAudioTag(tc.in)
				got, want = a, w
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// hevcRecord builds an HEVCDecoderConfigurationRecord holding the VPS, SPS
// and PPS of an Annex-B file made by ffmpeg.
func hevcRecord(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 23)
	rec[0] = 1
	for _, typ := range []h265.NALUType{h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT} {
		for _, n := range nalus {
			if h265.NALUType((n[0]>>1)&0x3f) == typ {
				rec = append(rec, byte(typ), 0, 1, byte(len(n)>>8), byte(len(n)))
				rec = append(rec, n...)
				rec[22]++
				break
			}
		}
	}
	if rec[22] != 3 {
		t.Fatalf("%s: VPS, SPS or PPS missing", path)
	}
	return rec
}

func TestParseHeader(t *testing.T) {
	avc, aac := testmedia.FLVHeaders(t, "testdata/h264_aac_640x360.flv")
	hvcc := hevcRecord(t, "testdata/hevc_640x360.h265")
	prev := unit.CodecInfo{Video: "H264", Width: 1, Height: 1, Audio: "AAC", SampleRate: 44100, Channels: 1}
	cases := []struct {
		name string
		pkt  *unit.Packet
		prev unit.CodecInfo
		ok   bool
		want unit.CodecInfo
	}{
		{"H.264 from ffmpeg", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: avc}, unit.CodecInfo{}, true,
			unit.CodecInfo{Video: "H264", Width: 640, Height: 360}},
		{"AAC from ffmpeg keeps the video", &unit.Packet{Kind: unit.KindAudio, Header: true, Payload: aac},
			unit.CodecInfo{Video: "H264", Width: 640, Height: 360}, true,
			unit.CodecInfo{Video: "H264", Width: 640, Height: 360, Audio: "AAC", SampleRate: 48000, Channels: 2}},
		{"H.265 Enhanced hvc1", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: cat([]byte{0x90, 'h', 'v', 'c', '1'}, hvcc)}, prev, true,
			unit.CodecInfo{Video: "H265", Width: 640, Height: 360, Audio: "AAC", SampleRate: 44100, Channels: 1}},
		{"H.265 legacy codec 12", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: cat([]byte{0x1c, 0, 0, 0, 0}, hvcc)}, unit.CodecInfo{}, true,
			unit.CodecInfo{Video: "H265", Width: 640, Height: 360}},
		{"broken AVC record: codec known, size not", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: avc[:12]}, prev, true,
			unit.CodecInfo{Video: "H264", Audio: "AAC", SampleRate: 44100, Channels: 1}},
		{"broken HEVC record", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: cat([]byte{0x90, 'h', 'v', 'c', '1'}, hvcc[:40])}, unit.CodecInfo{}, true,
			unit.CodecInfo{Video: "H265"}},
		{"video frame is not a header", &unit.Packet{Kind: unit.KindVideo, Payload: []byte{0x17, 1, 0, 0, 0, 1}}, prev, false, prev},
		{"audio frame is not a header", &unit.Packet{Kind: unit.KindAudio, Payload: []byte{0xaf, 1, 2}}, prev, false, prev},
		{"metadata is not a codec header", &unit.Packet{Kind: unit.KindData, Header: true, Payload: metaBody}, prev, false, prev},
		{"short video", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: []byte{0x17}}, prev, false, prev},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := unit.ParseHeader(tc.pkt, tc.prev)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("got %+v, %v\nwant %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
