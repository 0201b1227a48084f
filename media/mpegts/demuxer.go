package mpegts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/relaymesh/relaymesh/media/unit"
)

// Errors that end a demuxed stream: the input is not MPEG-TS, or not one
// we can carry.
var (
	ErrNotTS      = errors.New("input is not MPEG-TS: sync byte 0x47 not found")
	ErrNoProgram  = errors.New("no PAT/PMT with an H.264, H.265 or AAC stream found")
	ErrPESTooBig  = errors.New("PES packet larger than the limit")
	ErrTooBroken  = errors.New("too many consecutive broken PES packets")
	errBadSection = errors.New("bad PSI section")
)

// Limits of the Demuxer.
const (
	maxGarbageRun   = 4 * 1316     // bytes skipped looking for sync before giving up
	maxNoProgram    = 4 << 20      // bytes read without a usable PMT before giving up
	maxPES          = 16 << 20     // one PES packet
	maxGroup        = 4 << 20      // TS-lane bytes held while waiting for the next access unit
	maxBrokenPES    = 64           // consecutive PES packets that could not be parsed
	audioFrameTicks = 1024 * 90000 // numerator of one AAC frame's length in 90 kHz ticks
	maxParamSet     = 4096         // bytes of one SPS/PPS/VPS kept
)

// DemuxStats counts what the Demuxer saw.
type DemuxStats struct {
	TSPackets  uint64 `json:"ts_packets"`
	SyncLosses uint64 `json:"sync_losses"`
	CCErrors   uint64 `json:"cc_errors"`
	BadPES     uint64 `json:"bad_pes"`
	BadPSI     uint64 `json:"bad_psi"`
	Frames     uint64 `json:"frames"`
}

type pesState struct {
	buf     []byte
	started bool
	cc      int // last continuity counter, -1 unknown
	broken  bool
}

// Demuxer reads an MPEG-TS byte stream in chunks of any size and produces
// FLV-lane packets (AVC or Enhanced RTMP hvc1 video, AAC audio, each with
// its sequence header) and TS-lane packets: the input's own TS packets,
// grouped per video access unit with a keyframe's first packet starting a
// Keyframe lane packet, and PAT/PMT as Header lane packets. They pass
// untouched, except that a keyframe without SPS/PPS (VPS) gets the stored
// ones, so that a reader joining at any keyframe can decode (params.go).
// It is used by one goroutine.
type Demuxer struct {
	pend  []byte
	total int64
	run   int // consecutive garbage bytes

	pmtPID    int
	videoPID  int
	audioPID  int
	videoType byte
	pes       [2]pesState // video, audio
	ccPSI     map[int]int

	group    []byte
	inGroup  bool
	groupKey bool
	groupT   int64
	psi      []byte
	brokenN  int

	// timeline
	haveTS bool
	lastTS int64
	curTS  int64

	sps, pps, vps []byte
	groupNoParams bool     // the group's keyframe came without parameter sets
	fix           paramFix // puts them in (params.go)
	vhdrSent      bool
	vhdrCodec     byte
	asc           [2]byte
	ahdrSent      bool
	// declare: the PMT's tracks are to be declared in an onMetaData
	// before the next FLV packet (a flow waits for the video a source
	// declares and starts an audio-only one at once)
	declare bool
	pmtSeen bool

	nalus [][]byte
	held  []*unit.Packet // FLV packets of the access unit being closed, emitted after its TS group
	hold  func(*unit.Packet)
	// wantFLV (SetWantFLV) says whether FLV bodies are wanted; a held
	// video frame's body (lazy, from lazyNALUs of the PES buffer, which
	// is not touched before the frame is emitted) is built only once its
	// TS group is out and the answer is yes, else it gets a phantom
	wantFLV   func() bool
	holding   bool
	lazy      *unit.Packet
	lazyNALUs [][]byte
	lazyHdr   []byte
	lazySize  int
	// separate blocks for the two lanes: the FLV lane of an SRT
	// publisher is filled only while somebody reads it (media.Stream), and
	// a block shared with TS packets would keep its FLV bodies alive
	mem   slab // FLV bodies
	tsMem slab // TS groups and PSI
	stats DemuxStats
	// ccTold: the CCErrors NewCCErrors has returned
	ccTold uint64
}

// NewDemuxer returns a Demuxer waiting for a PAT.
func NewDemuxer() *Demuxer {
	d := &Demuxer{pmtPID: -1, videoPID: -1, audioPID: -1, ccPSI: map[int]int{}}
	d.hold = func(p *unit.Packet) { d.held = append(d.held, p) }
	for i := range d.pes {
		d.pes[i].cc = -1
	}
	return d
}

// SetWantFLV makes the demuxer ask want, once an access unit's TS group
// is emitted, whether its FLV video frame will be read
// (media.Publisher.WantsFLV); while it is not, the frame is emitted with
// a phantom payload of its size (unit.Phantom) and no body is built.
// Audio, headers and metadata are always real. nil (the default): always
// build.
func (d *Demuxer) SetWantFLV(want func() bool) { d.wantFLV = want }

// Stats returns the counters. CCErrors counts continuity-counter
// discontinuities on the PAT, PMT and elementary stream PIDs: a packet of
// a PID whose counter is neither the last one plus one (mod 16) nor a
// repeat of it (one duplicate is allowed), unless its adaptation field
// flags a discontinuity. A lost TS packet counts once; a publisher passes
// the count on (media.Publisher.AddContinuityErrors).
func (d *Demuxer) Stats() DemuxStats { return d.stats }

// NewCCErrors returns the continuity errors counted since its last call:
// what a publisher hands on after each Feed.
func (d *Demuxer) NewCCErrors() uint64 {
	n := d.stats.CCErrors - d.ccTold
	d.ccTold = d.stats.CCErrors
	return n
}

// Feed consumes b and calls emit for every packet produced, FLV-lane and
// TS-lane (Kind unit.KindTS) in order. Packets handed to emit are never
// touched again. An error means the input is unusable and the connection
// should be closed; skipped damage is only counted in Stats.
func (d *Demuxer) Feed(b []byte, emit func(*unit.Packet)) error {
	d.total += int64(len(b))
	// fast path: aligned whole packets and nothing pending
	if len(d.pend) == 0 {
		for len(b) >= PacketSize && b[0] == syncByte {
			if err := d.packet(b[:PacketSize], emit); err != nil {
				return err
			}
			b = b[PacketSize:]
		}
		if len(b) == 0 {
			return d.checkProgram()
		}
	}
	d.pend = append(d.pend, b...)
	p := d.pend
	for len(p) >= PacketSize {
		if p[0] == syncByte {
			if d.run == 0 || (len(p) > PacketSize && p[PacketSize] == syncByte) {
				if err := d.packet(p[:PacketSize], emit); err != nil {
					d.pend = d.pend[:0]
					return err
				}
				p = p[PacketSize:]
				continue
			}
			if len(p) <= PacketSize {
				break // a candidate we cannot confirm yet
			}
		}
		// out of sync: skip to the next candidate sync byte
		if d.run == 0 {
			d.stats.SyncLosses++
		}
		j := bytes.IndexByte(p[1:], syncByte) + 1
		if j == 0 {
			j = len(p)
		}
		d.run += j
		p = p[j:]
		if d.run > maxGarbageRun {
			d.pend = d.pend[:0]
			return fmt.Errorf("%w in %d bytes", ErrNotTS, d.run)
		}
	}
	n := copy(d.pend, p)
	d.pend = d.pend[:n]
	return d.checkProgram()
}

func (d *Demuxer) checkProgram() error {
	if d.videoPID < 0 && d.audioPID < 0 && d.total > maxNoProgram {
		return fmt.Errorf("%w in the first %d bytes", ErrNoProgram, d.total)
	}
	return nil
}

// packet handles one 188-byte TS packet.
func (d *Demuxer) packet(pkt []byte, emit func(*unit.Packet)) error {
	d.stats.TSPackets++
	d.run = 0
	if pkt[1]&0x80 != 0 { // transport error indicator
		return nil
	}
	pusi := pkt[1]&0x40 != 0
	pid := int(pkt[1]&0x1f)<<8 | int(pkt[2])
	afc := pkt[3] >> 4 & 3
	cc := int(pkt[3] & 0x0f)
	off := 4
	// discont: the adaptation field's discontinuity_indicator, a
	// continuity counter that may start anew (a splice): not an error
	discont := false
	if afc&2 != 0 {
		off = 5 + int(pkt[4])
		if off > PacketSize {
			d.stats.BadPES++
			return nil
		}
		discont = pkt[4] > 0 && pkt[5]&0x80 != 0
	}
	var payload []byte
	if afc&1 != 0 && off < PacketSize {
		payload = pkt[off:]
	}
	switch {
	case pid == pidNull:
		return nil
	case pid == pidPAT || pid == d.pmtPID:
		if payload != nil {
			if err := d.section(pid, cc, discont, pusi, payload); err != nil {
				d.stats.BadPSI++
			}
		}
		d.psi = append(d.psi, pkt...)
		if len(d.psi) > 64*PacketSize {
			d.psi = d.psi[len(d.psi)-16*PacketSize:]
		}
		return nil
	case d.videoPID < 0 && d.audioPID < 0:
		return nil // no programme yet: nothing a reader could decode
	}
	idx := -1
	switch pid {
	case d.videoPID:
		idx = 0
	case d.audioPID:
		idx = 1
	}
	startsAU := pusi && (idx == 0 || (idx == 1 && d.videoPID < 0))
	if idx >= 0 && pusi {
		out := emit
		if startsAU {
			// the access unit's TS group goes out before its FLV packets,
			// so that whenever the TS lane lacks an access unit the FLV
			// lane lacks it too (media.Stream rebuilds an FLV lane from
			// the TS lane's GOP)
			out = d.hold
		}
		d.holding = startsAU
		err := d.finishPES(idx, out)
		d.holding = false
		if startsAU {
			d.flushGroup(emit)
			d.emitHeld(emit)
		}
		if err != nil {
			return err
		}
	}
	if startsAU {
		d.groupKey, d.inGroup = false, true
	}
	if !d.inGroup {
		return nil // before the first access unit: nothing a reader could decode
	}
	d.group = append(d.group, pkt...)
	if len(d.group) > maxGroup {
		d.flushGroup(emit)
	}
	if idx < 0 || payload == nil {
		return nil
	}
	st := &d.pes[idx]
	if st.cc >= 0 && !discont && cc != (st.cc+1)&0x0f && cc != st.cc {
		d.stats.CCErrors++
		st.broken = true
	}
	st.cc = cc
	if pusi {
		st.buf = append(st.buf[:0], payload...)
		st.started, st.broken = true, false
	} else if st.started {
		st.buf = append(st.buf, payload...)
		if len(st.buf) > maxPES {
			st.started = false
			st.buf = st.buf[:0]
			return fmt.Errorf("%w (%d bytes on PID %d)", ErrPESTooBig, maxPES, pid)
		}
	}
	// a bounded PES (audio) is complete as soon as its length is reached
	if st.started && len(st.buf) >= 6 {
		if n := int(binary.BigEndian.Uint16(st.buf[4:6])); n > 0 && len(st.buf) >= 6+n {
			st.buf = st.buf[:6+n]
			return d.finishPES(idx, emit)
		}
	}
	return nil
}

func (d *Demuxer) emitHeld(emit func(*unit.Packet)) {
	for i, p := range d.held {
		if p == d.lazy {
			d.fillLazy()
		}
		emit(p)
		d.held[i] = nil
	}
	d.held = d.held[:0]
}

func (d *Demuxer) flushGroup(emit func(*unit.Packet)) {
	if len(d.group) > 0 {
		key := d.groupKey || d.videoPID < 0
		g := d.group
		switch {
		case d.groupNoParams:
			g = d.fix.inject(g, d.videoPID, d.videoType == streamTypeH265, [3][]byte{d.vps, d.sps, d.pps})
		case d.videoPID >= 0:
			d.fix.renumber(g, d.videoPID)
		}
		d.groupNoParams = false
		emit(&unit.Packet{Kind: unit.KindTS, Time: d.groupT, Keyframe: key, Payload: d.tsMem.copy(g)})
		d.group = shrink(d.group)
	}
	if len(d.psi) > 0 {
		emit(&unit.Packet{Kind: unit.KindTS, Time: d.groupT, Header: true, Payload: d.tsMem.copy(d.psi)})
		d.psi = d.psi[:0]
	}
}

// Flush emits what is held back at the end of the input.
func (d *Demuxer) Flush(emit func(*unit.Packet)) error {
	var err error
	for i := range d.pes {
		if e := d.finishPES(i, emit); e != nil && err == nil {
			err = e
		}
	}
	d.flushGroup(emit)
	return err
}

// section parses a single-packet PAT or PMT section.
func (d *Demuxer) section(pid, cc int, discont, pusi bool, b []byte) error {
	if last, ok := d.ccPSI[pid]; ok && !discont && cc != (last+1)&0x0f && cc != last {
		d.stats.CCErrors++
	}
	d.ccPSI[pid] = cc
	if !pusi {
		return nil // multi-packet sections are not needed for PAT/PMT here
	}
	ptr := int(b[0])
	if 1+ptr+3 > len(b) {
		return errBadSection
	}
	s := b[1+ptr:]
	n := int(binary.BigEndian.Uint16(s[1:3]) & 0x0fff)
	if n < 9 || 3+n > len(s) {
		return errBadSection
	}
	s = s[:3+n]
	if crc32MPEG(s[:len(s)-4]) != binary.BigEndian.Uint32(s[len(s)-4:]) {
		return errBadSection
	}
	body := s[8 : len(s)-4]
	switch {
	case pid == pidPAT && s[0] == 0x00:
		for ; len(body) >= 4; body = body[4:] {
			prog := binary.BigEndian.Uint16(body)
			p := int(binary.BigEndian.Uint16(body[2:]) & 0x1fff)
			if prog != 0 {
				if p == pidPAT || p == pidNull {
					return errBadSection
				}
				d.pmtPID = p
				return nil
			}
		}
		return errBadSection
	case pid == d.pmtPID && s[0] == 0x02:
		if len(body) < 4 {
			return errBadSection
		}
		pil := int(binary.BigEndian.Uint16(body[2:]) & 0x0fff)
		if 4+pil > len(body) {
			return errBadSection
		}
		video, audio, vtype := -1, -1, byte(0)
		for es := body[4+pil:]; len(es) >= 5; {
			st := es[0]
			p := int(binary.BigEndian.Uint16(es[1:]) & 0x1fff)
			il := int(binary.BigEndian.Uint16(es[3:]) & 0x0fff)
			if 5+il > len(es) {
				return errBadSection
			}
			es = es[5+il:]
			if p == pidPAT || p == pidNull || p == d.pmtPID {
				continue
			}
			switch st {
			case streamTypeH264, streamTypeH265:
				if video < 0 {
					video, vtype = p, st
				}
			case streamTypeAAC:
				if audio < 0 {
					audio = p
				}
			}
		}
		if video < 0 && audio < 0 {
			return fmt.Errorf("%w: PMT lists no H.264, H.265 or AAC stream", errBadSection)
		}
		if video != d.videoPID || vtype != d.videoType {
			d.pes[0] = pesState{cc: -1}
			d.vhdrSent = false
		}
		if audio != d.audioPID {
			d.pes[1] = pesState{cc: -1}
		}
		if !d.pmtSeen || (video < 0) != (d.videoPID < 0) || vtype != d.videoType || (audio < 0) != (d.audioPID < 0) {
			d.declare, d.pmtSeen = true, true
		}
		d.videoPID, d.audioPID, d.videoType = video, audio, vtype
		return nil
	}
	return nil
}

// declareTracks emits the onMetaData that declares the PMT's tracks when
// the PMT changed them, stamped t (the FLV packet it goes before: a
// session's timeline is based on its first packet).
func (d *Demuxer) declareTracks(t int64, emit func(*unit.Packet)) {
	if !d.declare {
		return
	}
	d.declare = false
	codec := ""
	switch {
	case d.videoPID < 0:
	case d.videoType == streamTypeH265:
		codec = "H265"
	default:
		codec = "H264"
	}
	emit(unit.MetaDataPacket(t, codec, d.audioPID >= 0))
}

// unwrap maps a 33-bit timestamp onto the demuxer's continuous timeline.
func (d *Demuxer) unwrap(raw int64) int64 {
	raw &= mask33
	if !d.haveTS {
		d.haveTS, d.lastTS, d.curTS = true, raw, raw
		return raw
	}
	diff := (raw - d.lastTS) & mask33
	if diff >= 1<<32 {
		diff -= 1 << 33
	}
	d.lastTS = raw
	d.curTS += diff
	return d.curTS
}

func readTS(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

func signed33(v int64) int64 {
	v &= mask33
	if v >= 1<<32 {
		v -= 1 << 33
	}
	return v
}

// finishPES processes the PES held for stream idx, if any.
func (d *Demuxer) finishPES(idx int, emit func(*unit.Packet)) error {
	st := &d.pes[idx]
	if !st.started {
		return nil
	}
	st.started = false
	err := d.parsePES(idx, st.buf, st.broken, emit)
	st.buf = shrink(st.buf)
	return err
}

// parsePES handles one complete PES packet b of stream idx.
func (d *Demuxer) parsePES(idx int, b []byte, broken bool, emit func(*unit.Packet)) error {
	if broken {
		d.stats.BadPES++
		return d.broken()
	}
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		d.stats.BadPES++
		return d.broken()
	}
	flags := b[7]
	hl := int(b[8])
	if 9+hl > len(b) || flags&0x80 == 0 || (flags&0xC0 == 0xC0 && hl < 10) || hl < 5 {
		d.stats.BadPES++
		return d.broken()
	}
	if n := int(binary.BigEndian.Uint16(b[4:6])); n > 0 && 6+n < len(b) {
		b = b[:6+n]
	}
	rawPTS := readTS(b[9:])
	rawDTS := rawPTS
	if flags&0xC0 == 0xC0 {
		rawDTS = readTS(b[14:])
	}
	es := b[9+hl:]
	dts := d.unwrap(rawDTS)
	pts := dts + signed33(rawPTS-rawDTS)
	d.brokenN = 0
	if idx == 0 {
		return d.videoAU(es, pts, dts, emit)
	}
	return d.audioPES(es, pts, emit)
}

func (d *Demuxer) broken() error {
	d.brokenN++
	if d.brokenN > maxBrokenPES {
		return fmt.Errorf("%w (%d)", ErrTooBroken, d.brokenN)
	}
	return nil
}

func ms(ts int64) int64 {
	if ts < 0 {
		return 0
	}
	return ts / 90
}

// splitAnnexB appends the NAL units of an Annex-B byte stream to dst.
func splitAnnexB(dst [][]byte, b []byte) [][]byte {
	start := -1
	i := 0
	for i+2 < len(b) {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				if end > start {
					dst = append(dst, b[start:end])
				}
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		dst = append(dst, b[start:])
	}
	return dst
}

func (d *Demuxer) videoAU(es []byte, pts, dts int64, emit func(*unit.Packet)) error {
	hevc := d.videoType == streamTypeH265
	d.nalus = splitAnnexB(d.nalus[:0], es)
	key := false
	changed := false
	size := 0
	var has [3]bool // VPS, SPS, PPS in this access unit
	keep := d.nalus[:0]
	for _, n := range d.nalus {
		if len(n) == 0 {
			continue
		}
		if hevc {
			if len(n) < 2 {
				continue
			}
			switch typ := n[0] >> 1 & 0x3f; {
			case typ == 32:
				has[0] = true
				changed = setParam(&d.vps, n) || changed
				continue
			case typ == 33:
				has[1] = true
				changed = setParam(&d.sps, n) || changed
				continue
			case typ == 34:
				has[2] = true
				changed = setParam(&d.pps, n) || changed
				continue
			case typ == 35:
				continue
			case typ >= 16 && typ <= 23:
				key = true
			}
		} else {
			switch n[0] & 0x1f {
			case 7:
				has[1] = true
				changed = setParam(&d.sps, n) || changed
				continue
			case 8:
				has[2] = true
				changed = setParam(&d.pps, n) || changed
				continue
			case 9:
				continue
			case 5:
				key = true
			}
		}
		keep = append(keep, n)
		size += 4 + len(n)
	}
	d.nalus = keep
	// they point into the PES buffer, which may be dropped
	defer func() { clear(d.nalus[:cap(d.nalus)]) }()
	t := ms(dts)
	d.groupKey = d.groupKey || key
	if key && (!has[1] || !has[2] || hevc && !has[0]) && d.sps != nil && d.pps != nil && (!hevc || d.vps != nil) {
		d.groupNoParams = true
	}
	d.groupT = t
	if (changed || !d.vhdrSent) && d.sps != nil && d.pps != nil && (!hevc || d.vps != nil) {
		rec, err := d.decoderConfig(hevc)
		if err != nil {
			d.stats.BadPES++
		} else {
			d.vhdrSent = true
			d.declareTracks(t, emit)
			emit(&unit.Packet{Kind: unit.KindVideo, Time: t, Header: true, Payload: rec})
		}
	}
	if !d.vhdrSent || len(keep) == 0 {
		return nil
	}
	cts := ms(pts) - t
	if pts < dts {
		cts = -((dts - pts) / 90)
	}
	ft := byte(2)
	if key {
		ft = 1
	}
	hl := 5
	if hevc {
		hl = 8
	}
	var hdr []byte
	if hevc {
		hdr = append(d.lazyHdr[:0], 0x80|ft<<4|1, 'h', 'v', 'c', '1', byte(cts>>16), byte(cts>>8), byte(cts))
	} else {
		hdr = append(d.lazyHdr[:0], ft<<4|7, 1, byte(cts>>16), byte(cts>>8), byte(cts))
	}
	d.lazyHdr = hdr
	pk := &unit.Packet{Kind: unit.KindVideo, Time: t, Keyframe: key}
	if d.wantFLV != nil && d.holding && hl+size <= unit.MaxPhantom {
		d.lazy, d.lazySize = pk, size
		d.lazyNALUs = append(d.lazyNALUs[:0], keep...)
	} else {
		pk.Payload = d.videoBody(hdr, keep, size)
	}
	d.stats.Frames++
	d.declareTracks(t, emit)
	emit(pk)
	return nil
}

// videoBody builds an FLV video tag body in place (no scratch as large
// as a keyframe): the tag header hdr, then each NAL unit with its
// length.
func (d *Demuxer) videoBody(hdr []byte, nalus [][]byte, size int) []byte {
	body := append(d.mem.alloc(len(hdr) + size)[:0], hdr...)
	for _, n := range nalus {
		body = binary.BigEndian.AppendUint32(body, uint32(len(n)))
		body = append(body, n...)
	}
	return body
}

// fillLazy gives the held video frame its payload, now that its TS group
// is out: the body if FLV is wanted, else a phantom of its size.
func (d *Demuxer) fillLazy() {
	if d.wantFLV() {
		d.lazy.Payload = d.videoBody(d.lazyHdr, d.lazyNALUs, d.lazySize)
	} else {
		d.lazy.Payload = unit.Phantom(len(d.lazyHdr) + d.lazySize)
	}
	d.lazy = nil
	clear(d.lazyNALUs) // they point into the PES buffer
	d.lazyNALUs = d.lazyNALUs[:0]
}

func setParam(dst *[]byte, n []byte) bool {
	if len(n) > maxParamSet || string(*dst) == string(n) {
		return false
	}
	*dst = append([]byte(nil), n...)
	return true
}

// decoderConfig builds the FLV sequence header body: an
// AVCDecoderConfigurationRecord (legacy codec id 7) or an Enhanced RTMP
// hvc1 SequenceStart with an HEVCDecoderConfigurationRecord.
func (d *Demuxer) decoderConfig(hevc bool) ([]byte, error) {
	if !hevc {
		if len(d.sps) < 4 {
			return nil, fmt.Errorf("SPS too short")
		}
		b := []byte{0x17, 0, 0, 0, 0, 1, d.sps[1], d.sps[2], d.sps[3], 0xFF, 0xE1}
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.sps)))
		b = append(b, d.sps...)
		b = append(b, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.pps)))
		b = append(b, d.pps...)
		var s h264.SPS
		if err := s.Unmarshal(d.sps); err != nil {
			return nil, err
		}
		return b, nil
	}
	var s h265.SPS
	if err := s.Unmarshal(d.sps); err != nil {
		return nil, err
	}
	rbsp := h264.EmulationPreventionRemove(d.sps)
	if len(rbsp) < 15 {
		return nil, fmt.Errorf("HEVC SPS too short")
	}
	b := []byte{0x90, 'h', 'v', 'c', '1', 1}
	b = append(b, rbsp[3:15]...) // profile_tier_level: profile, 4 compat, 6 constraint, level
	b = append(b, 0xF0, 0x00, 0xFC,
		0xFC|byte(s.ChromaFormatIdc&3),
		0xF8|byte(s.BitDepthLumaMinus8&7),
		0xF8|byte(s.BitDepthChromaMinus8&7),
		0, 0,
		byte(s.MaxSubLayersMinus1+1)<<3&0x38|boolBit(s.TemporalIDNestingFlag)<<2|3,
		3)
	for _, ps := range []struct {
		t byte
		n []byte
	}{{32, d.vps}, {33, d.sps}, {34, d.pps}} {
		b = append(b, 0x80|ps.t, 0, 1)
		b = binary.BigEndian.AppendUint16(b, uint16(len(ps.n)))
		b = append(b, ps.n...)
	}
	return b, nil
}

func boolBit(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (d *Demuxer) audioPES(es []byte, pts int64, emit func(*unit.Packet)) error {
	i := 0
	for len(es) >= 7 {
		if es[0] != 0xFF || es[1]&0xF6 != 0xF0 {
			d.stats.BadPES++
			return d.broken()
		}
		hl := 7
		if es[1]&1 == 0 {
			hl = 9
		}
		flen := int(es[3]&3)<<11 | int(es[4])<<3 | int(es[5])>>5
		if flen < hl || flen > len(es) {
			d.stats.BadPES++
			return d.broken()
		}
		profile := es[2] >> 6
		sfi := es[2] >> 2 & 0x0f
		ch := (es[2]&1)<<2 | es[3]>>6
		if int(sfi) >= len(adtsRates) {
			d.stats.BadPES++
			return d.broken()
		}
		asc := [2]byte{(profile+1)<<3 | sfi>>1, (sfi&1)<<7 | ch<<3}
		ts := pts + int64(i)*audioFrameTicks/int64(adtsRates[sfi])
		if d.videoPID < 0 && i == 0 {
			d.groupT = ms(ts)
		}
		if !d.ahdrSent || asc != d.asc {
			d.asc, d.ahdrSent = asc, true
			d.declareTracks(ms(ts), emit)
			emit(&unit.Packet{Kind: unit.KindAudio, Time: ms(ts), Header: true, Payload: []byte{0xAF, 0, asc[0], asc[1]}})
		}
		body := d.mem.alloc(2 + flen - hl)
		body[0], body[1] = 0xAF, 1
		copy(body[2:], es[hl:flen])
		d.stats.Frames++
		d.declareTracks(ms(ts), emit)
		emit(&unit.Packet{Kind: unit.KindAudio, Time: ms(ts), Payload: body})
		es = es[flen:]
		i++
	}
	return nil
}
