package webrtc

import (
	"bytes"
	"testing"
)

// TestAVCCToAnnexB: NAL units with the record's length size (4, 2 or 1
// bytes) become Annex B, and a length past the data ends the conversion.
func TestAVCCToAnnexB(t *testing.T) {
	idr, sei := []byte{0x65, 1, 2, 3}, []byte{0x06, 9}
	want := append(append([]byte{0, 0, 0, 1}, sei...), append([]byte{0, 0, 0, 1}, idr...)...)
	for _, tc := range []struct {
		nalLen int
		in     []byte
	}{
		{4, []byte{0, 0, 0, 2, 0x06, 9, 0, 0, 0, 4, 0x65, 1, 2, 3}},
		{2, []byte{0, 2, 0x06, 9, 0, 4, 0x65, 1, 2, 3}},
		{1, []byte{2, 0x06, 9, 4, 0x65, 1, 2, 3}},
		{0, []byte{0, 0, 0, 2, 0x06, 9, 0, 0, 0, 4, 0x65, 1, 2, 3}}, // unknown: 4
	} {
		if got := avccToAnnexB(nil, tc.in, tc.nalLen); !bytes.Equal(got, want) {
			t.Errorf("nalLen %d: %x, want %x", tc.nalLen, got, want)
		}
	}
	if got := avccToAnnexB(nil, []byte{0, 2, 0x06, 9, 0, 40, 0x65, 1}, 2); !bytes.Equal(got, want[:6]) {
		t.Errorf("overrun: %x, want %x", got, want[:6])
	}
}
