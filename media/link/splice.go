package link

import (
	"fmt"

	"github.com/relaymesh/relaymesh/media/unit"
)

// The splice of a pull's replacement into the stream.
//
// A center that pulls a stream from another center moves the pull when the
// stream moves (make-before-break): the new pull runs beside the old one
// and takes the stream over in the hub. Both carry the same edge's TS,
// passed untouched by both hosts, so their timestamps (the origin's DTS,
// which the demuxer does not rebase) name the same frames. The new pull
// starts at its host's last keyframe, which may be newer than what the
// old, slower pull has delivered (taking over at once loses the frames
// between) or older (what it repeats is dropped).
//
// spliceState decides, packet by packet, which copy's packets go to the
// hub. It is pure: the caller serialises the calls and writes what it is
// told. Per track (FLV video, FLV audio, TS lane) it keeps the old copy's
// last time; the new copy's packets the old one delivered already are
// dropped, the rest are buffered in order. The switch comes when the old
// copy reaches the new one's first buffered keyframe (the lead track: TS
// groups and FLV video, FLV audio when there is no video): that packet of
// the old copy and everything after it are dropped, and the buffer goes
// out from the keyframe on, so the stream neither repeats nor skips a
// frame and the new copy starts at a keyframe. Audio follows: the buffered
// audio frames newer than the old copy's last one go out, and the old copy
// has delivered every frame before them (an audio PES that began before
// the new copy's first keyframe group is complete in the old copy before
// that group ends). The new copy's codec headers go out only when they
// differ from the old copy's.
//
// When the new copy is behind the old one (a keyframe of it other than
// its first, which its host's GOP cache sends at once, is one the old
// copy delivered already), the old copy never reaches a keyframe of it:
// the switch comes at once, without a lost frame (the new copy brings
// every frame after the old one's last, the hub drops what it repeats;
// the players wait the lag once). Waiting for a bound instead kept a
// leaving host's pull open past its leave wait (TestClusterDrainOnRestart).
//
// It switches at once, releasing the buffer from the old copy's last
// frames on, when the old copy ends (spliceOldEnded), when the buffer
// holds more than maxSpan of media or maxBytes, or when the two copies'
// timestamps are not one timeline (further apart than spliceMaxStep).
//
// The new copy's codec headers that go out are stamped with the time
// they go out at (the first packet released after them, else the old
// copy's last): stamped at its first keyframe, seconds back once it
// waited, the hub took the step back for a new clock and rebased the
// session (4.8 s of timestamps skipped at the third center of
// TestClusterDrainOnRestart).
type spliceState struct {
	maxSpan  int64 // ms
	maxBytes int

	last [spTracks]int64 // the old copy's last time per track
	seen [spTracks]bool
	// heads holds the old copy's latest header per slot, newHeads the new
	// copy's (released when different)
	heads, newHeads [unit.NumSlots]*unit.Packet

	buf   []*unit.Packet // the new copy's packets the old has not delivered
	bytes int
	video bool // the stream carries video: it leads the switch
	// newKey: the new copy brought a keyframe per track (its first)
	newKey [spTracks]bool

	// foreign: the copies are not on one timeline, nothing is filtered
	foreign bool

	done   bool
	reason string // why the switch came at once ("" at a keyframe)
	at     int64  // the keyframe's time (switch at a keyframe)

	// standby: the new copy is a standby (newStandbyState): it never
	// takes over at a keyframe or because it is behind, only when the
	// old copy ends or stalls; its buffer rolls instead (trimmed at
	// lead keyframes to maxSpan and maxBytes)
	standby bool
	trimmed int   // packets the standby's buffer dropped to its bounds
	maxHeld int64 // the largest span the standby's buffer held, ms
	// newFirst is the new copy's first time per track (newFirstSet):
	// the old copy's frames before it are in no buffer
	newFirst    [spTracks]int64
	newFirstSet [spTracks]bool
}

// Limits of a splice.
const (
	spliceMaxSpan  = 2000    // ms of the new copy's media buffered
	spliceMaxBytes = 8 << 20 // bytes of it
	spliceMaxStep  = 30000   // ms between the copies' times: not one timeline
)

// Tracks of a splice.
const (
	spVideo = iota
	spAudio
	spTS
	spTracks
)

func newSpliceState(maxSpan int64, maxBytes int) *spliceState {
	return &spliceState{maxSpan: maxSpan, maxBytes: maxBytes}
}

// newStandbyState returns the state of a standby copy: see Standby.
func newStandbyState(maxSpan int64, maxBytes int) *spliceState {
	return &spliceState{maxSpan: maxSpan, maxBytes: maxBytes, standby: true}
}

func spliceTrack(p *unit.Packet) int {
	switch {
	case p.Header:
		return -1
	case p.Kind == unit.KindVideo:
		return spVideo
	case p.Kind == unit.KindAudio:
		return spAudio
	case p.Kind == unit.KindTS:
		return spTS
	}
	return -1
}

// lead says whether track i decides the switch.
func (s *spliceState) lead(i int) bool {
	return i == spTS || (s.video && i == spVideo) || (!s.video && i == spAudio)
}

// randomAccess says whether p (of track i) can start the new copy.
func randomAccess(p *unit.Packet, i int) bool {
	return p.Keyframe || i == spAudio
}

// point returns the time of the new copy's first buffered packet of lead
// track i that can start it.
func (s *spliceState) point(i int) (int64, bool) {
	for _, p := range s.buf {
		if spliceTrack(p) == i && randomAccess(p, i) {
			return p.Time, true
		}
	}
	return 0, false
}

// old takes the old copy's packet p and says whether to write it. After
// a false return with done set, the switch came: write release().
func (s *spliceState) old(p *unit.Packet) bool {
	if s.done {
		return false
	}
	if p.Header {
		s.heads[unit.HeaderSlot(p)] = p
		return true
	}
	i := spliceTrack(p)
	if i < 0 {
		return true
	}
	if i == spVideo {
		s.video = true
	}
	if s.lead(i) && !s.standby {
		if k, ok := s.point(i); ok && p.Time >= k {
			s.done, s.at = true, k
			return false
		}
	}
	if !s.seen[i] || p.Time > s.last[i] {
		s.last[i], s.seen[i] = p.Time, true
	}
	s.trim()
	return true
}

// delivered says whether the old copy delivered p of track i already.
func (s *spliceState) delivered(p *unit.Packet, i int) bool {
	return i >= 0 && s.seen[i] && p.Time <= s.last[i]
}

// trim drops the buffered packets the old copy has delivered since.
func (s *spliceState) trim() {
	n := 0
	for _, p := range s.buf {
		if s.delivered(p, spliceTrack(p)) {
			s.bytes -= len(p.Payload)
			continue
		}
		s.buf[n] = p
		n++
	}
	clear(s.buf[n:])
	s.buf = s.buf[:n]
}

// new takes the new copy's packet p before the switch. It reports the
// reason to switch at once, or "" to go on waiting.
func (s *spliceState) new(p *unit.Packet) string {
	if p.Header {
		s.newHeads[unit.HeaderSlot(p)] = p
		return ""
	}
	i := spliceTrack(p)
	if i < 0 {
		return "" // other data: the old copy carries it until the switch
	}
	if !s.newFirstSet[i] {
		s.newFirst[i], s.newFirstSet[i] = p.Time, true
	}
	if i == spVideo {
		s.video = true
	}
	if s.lead(i) && !s.foreign && !s.standby {
		if !s.seen[i] {
			s.foreign = true
			s.buf = append(s.buf, p)
			return "the old pull delivered nothing yet"
		}
		if d := p.Time - s.last[i]; d > spliceMaxStep || d < -spliceMaxStep {
			s.foreign = true
			s.buf = append(s.buf, p)
			return fmt.Sprintf("the pulls' timestamps are %d ms apart: not one timeline", d)
		}
	}
	if s.delivered(p, i) {
		if s.lead(i) && p.Keyframe && !s.foreign && !s.standby {
			if s.newKey[i] {
				return fmt.Sprintf("the new pull is behind the old one (its keyframe at %d ms was delivered, the old pull is at %d ms): it goes on from the old pull's last frame", p.Time, s.last[i])
			}
			s.newKey[i] = true
		}
		return ""
	}
	if p.Keyframe {
		s.newKey[i] = true
	}
	s.buf = append(s.buf, p)
	s.bytes += len(p.Payload)
	if s.standby {
		s.roll()
		return ""
	}
	if s.bytes > s.maxBytes {
		return fmt.Sprintf("the new pull's buffer reached %d bytes", s.bytes)
	}
	if span := s.span(); span > s.maxSpan {
		return fmt.Sprintf("the new pull's buffer holds %d ms without the old pull reaching its keyframe", span)
	}
	return ""
}

// roll keeps a standby's buffer within maxSpan and maxBytes: while it
// holds more, it drops its packets before its next keyframe of a lead
// track (the buffer then starts at a keyframe); it keeps at least its
// newest group.
func (s *spliceState) roll() {
	for s.bytes > s.maxBytes || s.span() > s.maxSpan {
		cut := -1
		for n, p := range s.buf {
			if i := spliceTrack(p); n > 0 && s.lead(i) && p.Keyframe {
				cut = n
				break
			}
		}
		if cut < 0 {
			break
		}
		for _, p := range s.buf[:cut] {
			s.bytes -= len(p.Payload)
		}
		s.trimmed += cut
		n := copy(s.buf, s.buf[cut:])
		clear(s.buf[n:])
		s.buf = s.buf[:n]
		// what it dropped the old copy has not delivered: the new copy
		// covers from its buffer's start on
		var done [spTracks]bool
		for _, p := range s.buf {
			if i := spliceTrack(p); i >= 0 && !done[i] {
				s.newFirst[i], done[i] = p.Time, true
			}
		}
	}
	s.maxHeld = max(s.maxHeld, s.span())
}

// covers says whether a switch now would lose no frame of the lead
// tracks: the old copy delivered up to the new copy's first frame, so
// every later one is in the new copy (delivered, buffered or to come).
func (s *spliceState) covers() bool {
	any := false
	for i := range spTracks {
		if !s.lead(i) || !s.newFirstSet[i] {
			continue
		}
		if !s.seen[i] || s.last[i] < s.newFirst[i] {
			return false
		}
		any = true
	}
	return any
}

// span is the media time the buffer holds on its lead tracks.
func (s *spliceState) span() int64 {
	var lo, hi int64
	any := false
	for _, p := range s.buf {
		if i := spliceTrack(p); !s.lead(i) {
			continue
		}
		if !any {
			lo, hi, any = p.Time, p.Time, true
		}
		lo, hi = min(lo, p.Time), max(hi, p.Time)
	}
	return hi - lo
}

// drop forgets what the new copy gave (its session ended).
func (s *spliceState) drop() {
	clear(s.buf)
	s.buf, s.bytes, s.newHeads, s.foreign, s.newKey = s.buf[:0], 0, [unit.NumSlots]*unit.Packet{}, false, [spTracks]bool{}
	s.newFirstSet = [spTracks]bool{}
}

// switchNow makes the switch come at once, for reason.
func (s *spliceState) switchNow(reason string) {
	if !s.done {
		s.done, s.reason = true, reason
	}
}

// release returns what to write once done: the new copy's headers that
// differ from the old copy's, then its buffered packets the old copy did
// not deliver, in order. Later packets of the new copy go to the hub as
// they come (the hub drops what a continuing session repeats).
func (s *spliceState) release() []*unit.Packet {
	var heads, out []*unit.Packet
	for k, h := range s.newHeads {
		if h != nil && (s.heads[k] == nil || k == unit.SlotTS || string(h.Payload) != string(s.heads[k].Payload)) {
			heads = append(heads, h)
		}
	}
	for _, p := range s.buf {
		if s.foreign || !s.delivered(p, spliceTrack(p)) {
			out = append(out, p)
		}
	}
	// the headers go out at the time of what follows them
	at := int64(0)
	switch {
	case len(out) > 0:
		at = out[0].Time
	default:
		for i, seen := range s.seen {
			if seen {
				at = max(at, s.last[i])
			}
		}
	}
	for i, h := range heads {
		if h.Time < at {
			c := *h
			c.Time = at
			heads[i] = &c
		}
	}
	s.buf, s.bytes, s.newHeads = nil, 0, [unit.NumSlots]*unit.Packet{}
	return append(heads, out...)
}
