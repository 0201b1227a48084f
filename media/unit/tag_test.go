package unit_test

import (
	"testing"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestDeclaredTracks: what an onMetaData declares, as encoders write it
// (ffmpeg's of an H.264 + AAC file, an audio-only one, Enhanced RTMP's
// FourCC, flvtool's hasVideo) and bodies that declare nothing.
func TestDeclaredTracks(t *testing.T) {
	meta := func(obj amf0.ECMAArray) []byte {
		b, err := amf0.Data{"onMetaData", obj}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	n := func(k string, v any) amf0.ObjectEntry { return amf0.ObjectEntry{Key: k, Value: v} }
	for _, c := range []struct {
		name string
		body []byte
		want unit.Tracks
	}{
		{"ffmpeg h264+aac file", fileMetaData(t, "testdata/h264_aac_640x360.flv"), unit.TracksVideo},
		{"ffmpeg audio only", meta(amf0.ECMAArray{n("duration", 0.0), n("audiodatarate", 62.5), n("audiosamplerate", 48000.0),
			n("stereo", true), n("audiocodecid", 10.0), n("encoder", "Lavf61.7.100"), n("filesize", 0.0)}), unit.TracksAudioOnly},
		{"enhanced rtmp fourcc", meta(amf0.ECMAArray{n("videocodecid", "hvc1"), n("audiocodecid", 10.0)}), unit.TracksVideo},
		{"hasVideo false", meta(amf0.ECMAArray{n("hasVideo", false), n("hasAudio", true)}), unit.TracksAudioOnly},
		{"picture size only", meta(amf0.ECMAArray{n("width", 1280.0), n("height", 720.0)}), unit.TracksVideo},
		{"no track keys", meta(amf0.ECMAArray{n("duration", 0.0), n("encoder", "x")}), unit.TracksUnknown},
		{"built by MetaDataPacket, audio", unit.MetaDataPacket(0, "", true).Payload, unit.TracksAudioOnly},
		{"built by MetaDataPacket, h265", unit.MetaDataPacket(0, "H265", false).Payload, unit.TracksVideo},
		{"truncated", meta(amf0.ECMAArray{n("audiocodecid", 10.0)})[:20], unit.TracksUnknown},
		{"not onMetaData", []byte{0x02, 0, 3, 'f', 'o', 'o'}, unit.TracksUnknown},
	} {
		if got := unit.DeclaredTracks(c.body); got != c.want {
			t.Errorf("%s: declares %v, want %v", c.name, got, c.want)
		}
	}
}

// fileMetaData returns the first script tag of an FLV file.
func fileMetaData(t *testing.T, path string) []byte {
	t.Helper()
	for _, tag := range testmedia.FLVTags(t, path) {
		if unit.Kind(tag.Kind) == unit.KindData {
			return tag.Body
		}
	}
	t.Fatalf("%s has no script tag", path)
	return nil
}
