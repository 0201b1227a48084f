package webrtc

import (
	"encoding/binary"
	"time"
)

// h264Assembler turns a WHIP publisher's H.264 RTP packets (RFC 6184,
// packetization mode 1: single NAL units, STAP-A, FU-A) into access units
// of 4-byte-length NAL units, in sequence order. It holds out-of-order
// packets in a window of reorderWindow sequence numbers, for at most
// maxWait after a gap: a packet that has not come by then is taken as
// lost. A bad packet costs only itself, or the frame it breaks: a frame
// with a lost or broken packet is dropped, and so is every frame after
// it until a keyframe (the decoder would show or log broken references
// otherwise); needKey tells the caller to ask the publisher for one.
// Everything dropped is counted by reason in drops.
//
// One goroutine (the track's read loop) owns it.
type h264Assembler struct {
	maxWait time.Duration
	emit    func(au []byte, ts uint32, at time.Time) error

	slots   [reorderWindow]rtpSlot
	started bool
	next    uint16 // the next sequence number to take
	held    int    // packets in slots
	gapAt   time.Time
	strays  int // consecutive packets far outside the window, close to each other
	stray   [resyncStrays]rtpSlot

	// the frame being assembled
	open     bool
	ts       uint32
	damaged  bool
	key      bool
	fuOpen   bool
	fuAt     int // where the FU-A NAL unit's length goes in au
	au       []byte
	needKey  bool
	drops    [numDrops]uint64
	frameErr error
}

// rtpSlot is one held packet; its payload buffer is kept for reuse.
type rtpSlot struct {
	used     bool
	rejected bool // a packet refused (padding, payload type) held for its place
	marker   bool
	seq      uint16
	ts       uint32
	at       time.Time
	payload  []byte
}

const (
	// reorderWindow is how far ahead of the next expected packet one is
	// held (and how far behind one is taken as late, not as a new clock).
	reorderWindow = 512
	// resyncStrays consecutive packets far outside the window, close to
	// each other, are the publisher's new sequence: the assembler starts
	// over on them.
	resyncStrays = 8
	// maxFrameBytes bounds one access unit.
	maxFrameBytes = 4 << 20
)

// Why packets or frames are dropped (the log's keys, the metric's
// reason label); the audio track's packets are refused for a bad header,
// bad padding, payload type or as a malformed Opus packet.
const (
	dropHeader      = iota // not an RTP packet
	dropPadding            // padding longer than the packet
	dropPayloadType        // not the track's H.264 payload type
	dropLate               // behind the window (late or duplicate)
	dropStray              // far ahead or behind: a sequence jump
	dropLost               // a sequence number that never came within maxWait
	dropBroken             // a frame with a broken NAL unit, STAP-A or FU-A
	dropWaitKey            // a whole frame after a loss, before the next keyframe
	dropBadOpus            // not an Opus packet (RFC 6716 section 3.4), on the audio track
	resyncs                // not a drop: times the sequence was followed to a new start
	numDrops
)

var dropNames = [numDrops]string{"bad_header", "bad_padding", "payload_type", "late", "sequence_jump", "lost", "broken_frame", "waiting_keyframe", "bad_opus", "sequence_restarts"}

func newH264Assembler(maxWait time.Duration, emit func([]byte, uint32, time.Time) error) *h264Assembler {
	return &h264Assembler{maxWait: maxWait, emit: emit, needKey: true}
}

// push takes one packet (payload less padding); rejected marks a packet
// refused for its header, kept only so its sequence number is not waited
// for. It returns the first error emit returned.
func (a *h264Assembler) push(seq uint16, ts uint32, marker bool, payload []byte, rejected bool, now time.Time) error {
	if !a.started {
		a.started, a.next = true, seq
	}
	d := int(int16(seq - a.next))
	if d >= reorderWindow && a.held > 0 {
		// the window is full behind a gap: give the gap up now
		a.skipGap()
		d = int(int16(seq - a.next))
	}
	switch {
	case d < -reorderWindow || d >= reorderWindow:
		if last := a.stray[(a.strays+resyncStrays-1)%resyncStrays].seq; a.strays == 0 || seq-last == 0 || seq-last > 64 {
			a.drops[dropStray] += uint64(a.strays)
			a.strays = 0
		}
		st := &a.stray[a.strays]
		st.used, st.rejected, st.marker, st.seq, st.ts, st.at = true, rejected, marker, seq, ts, now
		st.payload = append(st.payload[:0], payload...)
		if a.strays++; a.strays < resyncStrays {
			return a.frameErr
		}
		a.resync(now)
		return a.frameErr
	case d < 0:
		a.drops[dropLate]++
		return a.frameErr
	}
	a.drops[dropStray] += uint64(a.strays) // those before were strays indeed
	a.strays = 0
	s := &a.slots[seq%reorderWindow]
	if s.used {
		a.drops[dropLate]++ // a duplicate
		return a.frameErr
	}
	s.used, s.rejected, s.marker, s.seq, s.ts, s.at = true, rejected, marker, seq, ts, now
	s.payload = append(s.payload[:0], payload...)
	a.held++
	if seq != a.next && a.gapAt.IsZero() {
		a.gapAt = now
	}
	a.drain()
	a.expire(now)
	return a.frameErr
}

// reject counts a packet without a usable header.
func (a *h264Assembler) reject(reason int) { a.drops[reason]++ }

// waiting reports when the packets held behind a gap are given up
// waiting for it (zero if nothing waits).
func (a *h264Assembler) waiting() time.Time {
	if a.held == 0 {
		return time.Time{}
	}
	return a.gapAt.Add(a.maxWait)
}

// expire gives up a gap older than maxWait, as often as that holds.
func (a *h264Assembler) expire(now time.Time) error {
	for a.held > 0 && now.Sub(a.gapAt) >= a.maxWait {
		a.skipGap()
	}
	return a.frameErr
}

// drain takes the packets in order from next while there is no gap.
func (a *h264Assembler) drain() {
	moved := false
	for {
		s := &a.slots[a.next%reorderWindow]
		if !s.used || s.seq != a.next {
			break
		}
		a.take(s)
		s.used = false
		a.held--
		a.next++
		moved = true
	}
	if a.held == 0 {
		a.gapAt = time.Time{}
		return
	}
	if !moved {
		return
	}
	// a new gap: time it from the oldest packet held behind it
	a.gapAt = time.Time{}
	for i := range a.slots {
		if s := &a.slots[i]; s.used && (a.gapAt.IsZero() || s.at.Before(a.gapAt)) {
			a.gapAt = s.at
		}
	}
}

// skipGap takes the missing packets at next as lost and goes on with
// the first one held.
func (a *h264Assembler) skipGap() {
	for a.held > 0 {
		s := &a.slots[a.next%reorderWindow]
		if s.used && s.seq == a.next {
			break
		}
		a.drops[dropLost]++
		a.lose()
		a.next++
	}
	a.drain()
}

// lose marks a missing packet: the frame it was in is broken, and so is
// every later one until a keyframe.
func (a *h264Assembler) lose() {
	if a.open {
		a.damaged = true
	}
	a.needKey = true
}

// resync starts over on the strays held: the publisher's new sequence.
func (a *h264Assembler) resync(now time.Time) {
	for i := range a.slots {
		if a.slots[i].used {
			a.slots[i].used = false
			a.drops[dropStray]++
		}
	}
	a.held, a.gapAt, a.strays = 0, time.Time{}, 0
	a.drops[resyncs]++
	a.lose()
	a.finish(time.Time{})
	a.next = a.stray[0].seq
	for i := range a.stray {
		st := &a.stray[i]
		a.push(st.seq, st.ts, st.marker, st.payload, st.rejected, st.at)
	}
	a.expire(now)
}

// take adds the next packet in sequence to the frame.
func (a *h264Assembler) take(s *rtpSlot) {
	if s.rejected {
		// a refused packet with the frame's time was part of it
		if a.open && s.ts == a.ts {
			a.damaged = true
		}
		return
	}
	if a.open && s.ts != a.ts {
		a.finish(s.at) // its marker was lost or not set: the time says it ended
	}
	if !a.open {
		a.open, a.ts = true, s.ts
	}
	if !a.damaged {
		a.depacketize(s.payload)
	}
	if s.marker {
		a.finish(s.at)
	}
}

// depacketize appends a packet's NAL units to the frame, or marks it
// broken.
func (a *h264Assembler) depacketize(p []byte) {
	if len(p) == 0 {
		return // padding only
	}
	if p[0]&0x80 != 0 || len(a.au)+len(p) > maxFrameBytes {
		a.damaged = true
		return
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		if a.fuOpen {
			a.damaged = true
			return
		}
		a.appendNAL(p)
	case t == 24: // STAP-A: 16-bit sizes, each NAL unit whole
		if a.fuOpen {
			a.damaged = true
			return
		}
		for b := p[1:]; len(b) > 0; {
			if len(b) < 3 {
				a.damaged = true
				return
			}
			n := int(binary.BigEndian.Uint16(b))
			if n == 0 || n > len(b)-2 || b[2]&0x80 != 0 || b[2]&0x1f == 0 || b[2]&0x1f > 23 {
				a.damaged = true
				return
			}
			a.appendNAL(b[2 : 2+n])
			b = b[2+n:]
		}
	case t == 28: // FU-A
		if len(p) < 3 {
			a.damaged = true
			return
		}
		start, end, nt := p[1]&0x80 != 0, p[1]&0x40 != 0, p[1]&0x1f
		if (start && end) || (start == a.fuOpen) || nt == 0 || nt > 23 {
			a.damaged = true // a start inside one, a part without one
			return
		}
		if start {
			a.fuOpen, a.fuAt = true, len(a.au)
			a.au = append(a.au, 0, 0, 0, 0, p[0]&0xe0|nt)
			if nt == 5 {
				a.key = true
			}
		}
		a.au = append(a.au, p[2:]...)
		if end {
			a.fuOpen = false
			binary.BigEndian.PutUint32(a.au[a.fuAt:], uint32(len(a.au)-a.fuAt-4))
		}
	default: // STAP-B, MTAP, FU-B, reserved: not in packetization mode 1
		a.damaged = true
	}
}

func (a *h264Assembler) appendNAL(nal []byte) {
	if nal[0]&0x1f == 5 {
		a.key = true
	}
	a.au = binary.BigEndian.AppendUint32(a.au, uint32(len(nal)))
	a.au = append(a.au, nal...)
}

// finish ends the frame: emits it, or counts why not.
func (a *h264Assembler) finish(at time.Time) {
	if !a.open {
		return
	}
	switch {
	case a.damaged || a.fuOpen:
		a.drops[dropBroken]++
		a.needKey = true
	case len(a.au) == 0:
	case a.needKey && !a.key:
		a.drops[dropWaitKey]++
	default:
		a.needKey = false
		if err := a.emit(a.au, a.ts, at); err != nil && a.frameErr == nil {
			a.frameErr = err
		}
	}
	a.open, a.damaged, a.key, a.fuOpen, a.au = false, false, false, false, a.au[:0]
}
