// Package mpegts converts between the hub's two lanes: FLV tag bodies
// (RTMP, HTTP-FLV) and MPEG-TS (SRT). Muxer turns FLV-lane packets into
// whole 188-byte TS packets, one lane packet per access unit; Demuxer reads
// a TS byte stream in arbitrary chunks and produces both the FLV lane and a
// pass-through TS lane grouped per access unit.
package mpegts

// TS constants.
const (
	PacketSize = 188
	syncByte   = 0x47

	pidPAT  = 0x0000
	pidSDT  = 0x0011
	pidNull = 0x1FFF

	// PIDs the Muxer uses (the same as ffmpeg's defaults).
	pidPMT   = 0x1000
	pidVideo = 0x0100
	pidAudio = 0x0101

	streamTypeAAC  = 0x0F
	streamTypeH264 = 0x1B
	streamTypeH265 = 0x24

	streamIDVideo = 0xE0
	streamIDAudio = 0xC0

	mask33 = 1<<33 - 1
)

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc32MPEG is the CRC of PSI sections (MPEG-2, not reflected).
func crc32MPEG(b []byte) uint32 {
	c := uint32(0xFFFFFFFF)
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

// appendPSI appends one TS packet carrying section (without CRC; it is
// added) on pid.
func appendPSI(dst []byte, pid uint16, cc *uint8, section []byte) []byte {
	start := len(dst)
	dst = append(dst, syncByte, 0x40|byte(pid>>8), byte(pid), 0x10|*cc&0x0f, 0)
	*cc = (*cc + 1) & 0x0f
	dst = append(dst, section...)
	c := crc32MPEG(section)
	dst = append(dst, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
	for len(dst)-start < PacketSize {
		dst = append(dst, 0xFF)
	}
	return dst
}

func appendPAT(dst []byte, cc *uint8, version uint8) []byte {
	sec := [...]byte{
		0x00, 0xB0, 13, // table id, section length
		0x00, 0x01, // transport stream id
		0xC1 | (version&0x1f)<<1, 0, 0,
		0x00, 0x01, // program number 1
		0xE0 | byte(pidPMT>>8), byte(pidPMT & 0xff),
	}
	return appendPSI(dst, pidPAT, cc, sec[:])
}

type esInfo struct {
	streamType byte
	pid        uint16
}

func appendPMT(dst []byte, cc *uint8, version uint8, pcrPID uint16, es []esInfo) []byte {
	var buf [64]byte
	n := 9 + 5*len(es) + 4
	sec := append(buf[:0], 0x02, 0xB0|byte(n>>8), byte(n),
		0x00, 0x01, 0xC1|(version&0x1f)<<1, 0, 0,
		0xE0|byte(pcrPID>>8), byte(pcrPID), 0xF0, 0x00)
	for _, e := range es {
		sec = append(sec, e.streamType, 0xE0|byte(e.pid>>8), byte(e.pid), 0xF0, 0x00)
	}
	return appendPSI(dst, pidPMT, cc, sec)
}

// appendTimestamp writes a 33-bit PES timestamp with its 4-bit prefix.
func appendTimestamp(dst []byte, prefix byte, ts int64) []byte {
	ts &= mask33
	return append(dst,
		prefix<<4|byte(ts>>29)&0x0E|1,
		byte(ts>>22),
		byte(ts>>14)&0xFE|1,
		byte(ts>>7),
		byte(ts<<1)&0xFE|1)
}

// pesHeader builds a PES header into buf. pesLen 0 means unbounded.
func pesHeader(buf []byte, streamID byte, pts, dts int64, esLen int, bounded bool) []byte {
	hasDTS := dts != pts
	hdrData := 5
	flags := byte(0x80)
	if hasDTS {
		hdrData, flags = 10, 0xC0
	}
	plen := 0
	if bounded {
		plen = 3 + hdrData + esLen
		if plen > 0xFFFF {
			plen = 0
		}
	}
	buf = append(buf[:0], 0, 0, 1, streamID, byte(plen>>8), byte(plen), 0x84, flags, byte(hdrData))
	if hasDTS {
		buf = appendTimestamp(buf, 3, pts)
		buf = appendTimestamp(buf, 1, dts)
	} else {
		buf = appendTimestamp(buf, 2, pts)
	}
	return buf
}

// appendPES splits hdr+es into TS packets on pid. pcr < 0 means no PCR.
func appendPES(dst []byte, pid uint16, cc *uint8, hdr, es []byte, pcr int64, rai bool) []byte {
	total := len(hdr) + len(es)
	pos := 0
	first := true
	for pos < total {
		flags := byte(0)
		body := 0 // adaptation field bytes after its length byte
		if first {
			if rai {
				flags |= 0x40
			}
			if pcr >= 0 {
				flags |= 0x10
				body = 7
			} else if flags != 0 {
				body = 1
			}
		}
		minAF := 0
		if body > 0 {
			minAF = 1 + body
		}
		n := min(total-pos, 184-minAF)
		afTotal := 184 - n
		pusi := byte(0)
		if first {
			pusi = 0x40
		}
		afc := byte(0x10)
		if afTotal > 0 {
			afc = 0x30
		}
		dst = append(dst, syncByte, pusi|byte(pid>>8)&0x1f, byte(pid), afc|*cc&0x0f)
		*cc = (*cc + 1) & 0x0f
		if afTotal > 0 {
			dst = append(dst, byte(afTotal-1))
			if afTotal > 1 {
				dst = append(dst, flags)
				if flags&0x10 != 0 {
					b := pcr & mask33
					dst = append(dst, byte(b>>25), byte(b>>17), byte(b>>9), byte(b>>1), byte(b<<7)|0x7E, 0)
				}
				for i := 1 + max(body, 1); i < afTotal; i++ {
					dst = append(dst, 0xFF)
				}
			}
		}
		// payload: n bytes from the hdr+es concatenation at pos
		for n > 0 {
			if pos < len(hdr) {
				k := min(n, len(hdr)-pos)
				dst = append(dst, hdr[pos:pos+k]...)
				pos, n = pos+k, n-k
				continue
			}
			k := n
			dst = append(dst, es[pos-len(hdr):pos-len(hdr)+k]...)
			pos, n = pos+k, 0
		}
		first = false
	}
	return dst
}

// slab hands out immutable byte slices carved from blocks, so the hot path
// does one allocation per block instead of one per packet. A block lives
// as long as any slice of it is kept by a stream's lanes, so blocks are
// small against what a lane keeps (one GOP): at most one partly released
// block per lane is memory held for nothing, and large payloads (a
// keyframe) get their own allocation.
type slab struct {
	buf []byte
}

const slabSize = 64 << 10

func (s *slab) copy(b []byte) []byte {
	out := s.alloc(len(b))
	copy(out, b)
	return out
}

// alloc returns n bytes of the slab (their content undefined) with no
// room beyond them.
func (s *slab) alloc(n int) []byte {
	if n > slabSize/4 {
		return make([]byte, n)
	}
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]byte, 0, slabSize)
	}
	start := len(s.buf)
	s.buf = s.buf[:start+n]
	return s.buf[start : start+n : start+n]
}

// maxScratch is the capacity above which a scratch buffer is dropped
// once used instead of kept: the largest access unit (a keyframe) would
// otherwise be held per publisher for good.
const maxScratch = 64 << 10

// shrink empties a scratch buffer for reuse, or drops it when it grew
// beyond maxScratch.
func shrink(b []byte) []byte {
	if cap(b) > maxScratch {
		return nil
	}
	return b[:0]
}
