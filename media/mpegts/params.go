package mpegts

// Parameter sets in front of every pass-through keyframe.
//
// The Demuxer passes a publisher's TS packets through to the TS lane
// untouched. A publisher that sends SPS/PPS (and VPS) only once, before
// its first keyframe (GStreamer's h264parse and h265parse with their
// default config-interval=0 behind an encoder that does not repeat them,
// as x265 does not), leaves every SRT reader that joins later with slices
// that reference parameter sets it never got: it decodes nothing.
// So the Demuxer, the stream's single writer, re-muxes each keyframe PES
// that lacks them with the ones it stored, once, before the group goes to
// the lane: readers share the result as they share every packet, and no
// reader copies anything.
//
// The keyframe's own TS packets keep their headers and adaptation fields
// (PCR, random access indicator) and carry the grown PES in order; the
// bytes that no longer fit go into new packets right after the PES's last
// one. Every later packet of the video PID has its continuity counter
// moved by the number of packets added, so readers see no gap.

// paramFix is the Demuxer's state for re-muxing keyframes.
type paramFix struct {
	pid   int  // video PID ccOff applies to
	ccOff byte // packets added on pid so far, mod 16

	sets, pes, grown, out []byte // scratch
}

// tsPayload returns the payload of a TS packet (nil for none or a bad
// adaptation field length).
func tsPayload(pkt []byte) []byte {
	afc := pkt[3] >> 4 & 3
	off := 4
	if afc&2 != 0 {
		off = 5 + int(pkt[4])
	}
	if afc&1 == 0 || off >= PacketSize {
		return nil
	}
	return pkt[off:]
}

func tsPID(pkt []byte) int { return int(pkt[1]&0x1f)<<8 | int(pkt[2]) }

// renumber moves the continuity counter of every packet on pid in group
// by f.ccOff, in place.
func (f *paramFix) renumber(group []byte, pid int) {
	if pid != f.pid {
		f.pid, f.ccOff = pid, 0
	}
	if f.ccOff == 0 {
		return
	}
	for i := 0; i+PacketSize <= len(group); i += PacketSize {
		pkt := group[i : i+PacketSize]
		if tsPID(pkt) == pid {
			pkt[3] = pkt[3]&0xf0 | (pkt[3]+f.ccOff)&0x0f
		}
	}
}

// inject returns group, one video access unit's TS packets, with the
// parameter sets (VPS, SPS, PPS; VPS nil for H.264) inserted as Annex-B
// NAL units into the video PES on pid, after its access unit delimiter if
// it has one. The group's packets of pid must hold one whole PES,
// starting with its first packet; otherwise, and for a PES it cannot
// parse, it returns group as it is. Either way it renumbers the group's
// continuity counters on pid in place first. The result is valid until
// the next call.
func (f *paramFix) inject(group []byte, pid int, hevc bool, sets [3][]byte) []byte {
	f.renumber(group, pid)
	ps := f.sets[:0]
	for _, n := range sets {
		if n != nil {
			ps = append(append(ps, 0, 0, 0, 1), n...)
		}
	}
	f.sets = ps
	// the PES, as the payloads of the video packets in order
	pes := f.pes[:0]
	first := true
	last := -1 // offset of the last video packet
	for i := 0; i+PacketSize <= len(group); i += PacketSize {
		pkt := group[i : i+PacketSize]
		if tsPID(pkt) != pid {
			continue
		}
		if pusi := pkt[1]&0x40 != 0; pusi != first {
			return group // not one whole PES from its start
		}
		first = false
		pes = append(pes, tsPayload(pkt)...)
		last = i
	}
	f.pes = pes
	if last < 0 || len(pes) < 9 || pes[0] != 0 || pes[1] != 0 || pes[2] != 1 || 9+int(pes[8]) > len(pes) {
		return group
	}
	at := 9 + int(pes[8])
	at += audLen(pes[at:], hevc)

	// the grown PES: header, AUD, parameter sets, the rest
	grown := append(f.grown[:0], pes[:at]...)
	grown = append(grown, ps...)
	grown = append(grown, pes[at:]...)
	f.grown = grown
	if n := int(grown[4])<<8 | int(grown[5]); n > 0 {
		if n += len(ps); n > 0xFFFF {
			n = 0 // unbounded, as video PES may be
		}
		grown[4], grown[5] = byte(n>>8), byte(n)
	}

	out := f.out[:0]
	pos := 0
	var cc byte
	for i := 0; i+PacketSize <= len(group); i += PacketSize {
		pkt := group[i : i+PacketSize]
		start := len(out)
		out = append(out, pkt...)
		if tsPID(pkt) != pid {
			continue
		}
		cc = pkt[3] & 0x0f
		if pl := tsPayload(out[start:]); pl != nil {
			pos += copy(pl, grown[pos:])
		}
		if i != last {
			continue
		}
		// what no longer fits, in new packets after the PES's last one
		for pos < len(grown) {
			cc = (cc + 1) & 0x0f
			f.ccOff = (f.ccOff + 1) & 0x0f
			n := min(len(grown)-pos, 184)
			if n == 184 {
				out = append(out, syncByte, byte(pid>>8)&0x1f, byte(pid), 0x10|cc)
			} else {
				// adaptation field of stuffing before a short payload
				af := 184 - n
				out = append(out, syncByte, byte(pid>>8)&0x1f, byte(pid), 0x30|cc, byte(af-1))
				if af > 1 {
					out = append(out, 0)
					for range af - 2 {
						out = append(out, 0xFF)
					}
				}
			}
			out = append(out, grown[pos:pos+n]...)
			pos += n
		}
	}
	f.out = out
	if cap(out) > maxKeepScratch {
		f.pes, f.grown, f.out = nil, nil, nil // a huge keyframe: do not hold on to it
	}
	return out
}

// maxKeepScratch is the largest scratch buffer kept between keyframes.
const maxKeepScratch = 1 << 20

// audLen is the length of the access unit delimiter NAL unit (with its
// start code and trailing zeros up to the next start code) at the start of
// es, 0 if es does not start with one.
func audLen(es []byte, hevc bool) int {
	i := 0
	for i < len(es) && i < 4 && es[i] == 0 {
		i++
	}
	if i < 2 || i >= len(es) || es[i] != 1 || i+1 >= len(es) {
		return 0
	}
	h := es[i+1]
	if hevc && h>>1&0x3f != 35 || !hevc && h&0x1f != 9 {
		return 0
	}
	// the next start code ends it; its leading zeros go with it
	for j := i + 2; j+2 < len(es); j++ {
		if es[j] == 0 && es[j+1] == 0 && es[j+2] == 1 {
			for j > i+2 && es[j-1] == 0 {
				j--
			}
			return j
		}
	}
	return 0
}
