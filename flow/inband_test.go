package flow

import (
	"bytes"
	"testing"

	"github.com/relaymesh/relaymesh/media/unit"
)

func TestWithParamSets(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	rec := []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, byte(len(sps))}
	rec = append(append(rec, sps...), 1, 0, byte(len(pps)))
	rec = append(rec, pps...)
	hdr := &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: rec}
	idr := []byte{0x65, 0x88, 0x84}
	key := &unit.Packet{Kind: unit.KindVideo, Keyframe: true, Time: 40,
		Payload: append([]byte{0x17, 1, 0, 0, 0x28, 0, 0, 0, byte(len(idr))}, idr...)}

	got := withParamSets(hdr, key)
	want := []byte{0x17, 1, 0, 0, 0x28, 0, 0, 0, byte(len(sps))}
	want = append(append(want, sps...), 0, 0, 0, byte(len(pps)))
	want = append(append(want, pps...), 0, 0, 0, byte(len(idr)))
	want = append(want, idr...)
	if !bytes.Equal(got.Payload, want) || got.Time != 40 || !got.Keyframe {
		t.Errorf("keyframe after a switch:\n got % x\nwant % x", got.Payload, want)
	}
	if !bytes.Equal(key.Payload[5:], append([]byte{0, 0, 0, byte(len(idr))}, idr...)) {
		t.Error("the source's own packet was changed")
	}
	// not H.264/H.265, or nothing to add: the packet as it is
	for _, c := range []struct {
		name     string
		hdr, key *unit.Packet
	}{
		{"no header", nil, key},
		{"not a keyframe", hdr, &unit.Packet{Kind: unit.KindVideo, Payload: []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}}},
		{"broken header", &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: []byte{0x17, 0, 0, 0, 0, 1}}, key},
	} {
		if got := withParamSets(c.hdr, c.key); got != c.key {
			t.Errorf("%s: packet changed to % x", c.name, got.Payload)
		}
	}
}
