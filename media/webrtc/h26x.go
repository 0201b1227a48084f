package webrtc

import "encoding/binary"

var startCode = []byte{0, 0, 0, 1}

func appendAnnexB(dst, nalu []byte) []byte {
	dst = append(dst, startCode...)
	return append(dst, nalu...)
}

// avccToAnnexB converts 4-byte length-prefixed NAL units to Annex B; it
// stops at the first length that overruns the data.
func avccToAnnexB(dst, b []byte) []byte {
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n <= 0 || n > len(b) {
			break
		}
		dst = appendAnnexB(dst, b[:n])
		b = b[n:]
	}
	return dst
}

// paramSets returns the parameter sets of an AVC or HEVC decoder
// configuration record (SPS, PPS; or VPS, SPS, PPS), nil if malformed.
func paramSets(codec string, rec []byte) [][]byte {
	if codec == "H265" {
		return hvccParams(rec)
	}
	return avccParams(rec)
}

func avccParams(rec []byte) [][]byte {
	if len(rec) < 6 {
		return nil
	}
	var out [][]byte
	pos := 5
	nsps := int(rec[pos] & 0x1f)
	pos++
	take := func(count int) bool {
		for range count {
			if pos+2 > len(rec) {
				return false
			}
			n := int(binary.BigEndian.Uint16(rec[pos:]))
			pos += 2
			if n == 0 || pos+n > len(rec) {
				return false
			}
			out = append(out, rec[pos:pos+n])
			pos += n
		}
		return true
	}
	if !take(nsps) || pos >= len(rec) {
		return out
	}
	npps := int(rec[pos])
	pos++
	take(npps)
	return out
}

func hvccParams(rec []byte) [][]byte {
	if len(rec) < 23 {
		return nil
	}
	var out [][]byte
	pos := 23
	for range int(rec[22]) {
		if pos+3 > len(rec) {
			return out
		}
		count := int(binary.BigEndian.Uint16(rec[pos+1:]))
		pos += 3
		for range count {
			if pos+2 > len(rec) {
				return out
			}
			n := int(binary.BigEndian.Uint16(rec[pos:]))
			pos += 2
			if pos+n > len(rec) {
				return out
			}
			out = append(out, rec[pos:pos+n])
			pos += n
		}
	}
	return out
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
