package media_test

import (
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestStreamCodecs: a stream reports what its publisher's headers say.
func TestStreamCodecs(t *testing.T) {
	avc, aac := testmedia.FLVHeaders(t, "unit/testdata/h264_aac_640x360.flv")
	h := newHub(t, nil)
	p := publish(t, h, "live/codecs")
	write(t, p, meta(0),
		&unit.Packet{Kind: unit.KindVideo, Header: true, Payload: avc},
		&unit.Packet{Kind: unit.KindAudio, Header: true, Payload: aac})
	want := unit.CodecInfo{Video: "H264", Width: 640, Height: 360, Audio: "AAC", SampleRate: 48000, Channels: 2}
	if got := h.Stream("live/codecs").Codecs(); got != want {
		t.Fatalf("Codecs() = %+v, want %+v", got, want)
	}
}
