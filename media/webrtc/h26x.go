package webrtc

import "encoding/binary"

var startCode = []byte{0, 0, 0, 1}

func appendAnnexB(dst, nalu []byte) []byte {
	dst = append(dst, startCode...)
	return append(dst, nalu...)
}

// avccToAnnexB converts NAL units with nalLen-byte big-endian lengths
// (the decoder configuration's lengthSizeMinusOne + 1; 0 = 4) to Annex B;
// it stops at the first length that overruns the data.
func avccToAnnexB(dst, b []byte, nalLen int) []byte {
	if nalLen < 1 || nalLen > 4 {
		nalLen = 4
	}
	for len(b) >= nalLen {
		n := 0
		for _, c := range b[:nalLen] {
			n = n<<8 | int(c)
		}
		b = b[nalLen:]
		if n <= 0 || n > len(b) {
			break
		}
		dst = appendAnnexB(dst, b[:n])
		b = b[n:]
	}
	return dst
}

// avcRecord builds an AVCDecoderConfigurationRecord from one SPS and PPS.
func avcRecord(sps, pps []byte) []byte {
	rec := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(sps)))
	rec = append(rec, sps...)
	rec = append(rec, 1)
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(pps)))
	return append(rec, pps...)
}
