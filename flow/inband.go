package flow

// In-band parameter sets at a switch. The two sources of a flow are
// different encodes (other resolution, other SPS/PPS): the flow sends
// the new source's sequence header before its first keyframe, but a
// reader that keeps only the first one (ffmpeg -c copy into a file or
// into MPEG-TS, recorders, restreamers) would decode the new source
// with the old parameter sets ("top block unavailable"). So the first
// keyframe after a switch also carries the new source's parameter sets
// as NAL units in front of its own: every H.264/H.265 decoder takes
// those over.

import (
	"encoding/binary"

	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
)

// withParamSets returns keyframe key with the parameter sets of the video
// sequence header hdr in front of its NAL units, or key itself when
// either is not H.264/H.265 or cannot be read.
func withParamSets(hdr, key *unit.Packet) *unit.Packet {
	if hdr == nil || key.Kind != unit.KindVideo || !key.Keyframe || key.Header {
		return key
	}
	h, ok := unit.ParseVideoTag(hdr.Payload)
	if !ok || !h.Header || (h.Codec != "H264" && h.Codec != "H265") {
		return key
	}
	k, ok := unit.ParseVideoTag(key.Payload)
	if !ok || k.Header || k.EOS || k.Codec != h.Codec {
		return key
	}
	params, nalLen, err := mpegts.ParseDecoderConfig(h.Codec == "H265", h.Data)
	if err != nil || len(params) == 0 || nalLen < 1 || nalLen > 4 {
		return key
	}
	head := len(key.Payload) - len(k.Data) // the tag head: codec, packet type, CTS
	size := len(key.Payload)
	for _, ps := range params {
		if len(ps) >= 1<<(8*nalLen) {
			return key // does not fit this stream's NAL unit length field
		}
		size += nalLen + len(ps)
	}
	b := make([]byte, 0, size)
	b = append(b, key.Payload[:head]...)
	var n [4]byte
	for _, ps := range params {
		binary.BigEndian.PutUint32(n[:], uint32(len(ps)))
		b = append(b, n[4-nalLen:]...)
		b = append(b, ps...)
	}
	b = append(b, k.Data...)
	out := *key
	out.Payload = b
	return &out
}
