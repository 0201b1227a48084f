package dualpath

import (
	"time"
)

// Legs is the number of legs a Merger merges.
const Legs = 2

// DefaultWindow is the reorder window when none is configured.
const DefaultWindow = 500 * time.Millisecond

// ringSize bounds the packets a Merger keeps: those waiting for a gap
// before them to fill, plus the history of emitted ones (for counting
// copies that come later). At 3 Mbit/s (~300 packets/s) it holds 27 s.
const ringSize = 1 << 13

// LegStats are one leg's counters.
type LegStats struct {
	Up bool `json:"up"`
	// Ups counts the times the leg came up.
	Ups      uint64 `json:"ups"`
	Received uint64 `json:"received"`
	// First counts packets this leg delivered before the other.
	First uint64 `json:"first"`
	// Duplicates counts copies of packets the other leg delivered first.
	Duplicates uint64 `json:"duplicates"`
	// Late counts packets that came after the window closed on them.
	Late uint64 `json:"late"`
	// LateBy is the most a late packet came after its gap was given up
	// (while the merge still remembered the gap: up to about a window).
	LateBy time.Duration `json:"late_by_ns,omitempty"`
	// Recovered counts packets this leg never delivered that the other
	// leg did: what the merge saved this leg from losing.
	Recovered uint64 `json:"recovered_by_other"`
}

// Stats are a Merger's counters.
type Stats struct {
	Legs    [Legs]LegStats `json:"legs"`
	LegsUp  int            `json:"legs_up"`
	Emitted uint64         `json:"emitted"`
	// Lost counts packets neither leg delivered within the window.
	Lost uint64 `json:"lost"`
	// Resets counts sender restarts (a new SSRC).
	Resets  uint64 `json:"resets"`
	Pending int    `json:"pending"`
}

type slot struct {
	seq     uint64
	used    bool
	emitted bool
	mask    uint8
	at      time.Time // first arrival
	buf     []byte
}

// Merger merges two legs into one ordered stream of frames. It is not safe
// for concurrent use (Receiver is); time is passed in, so tests drive it.
//
// A frame is emitted as soon as every frame before it was: in steady state
// the merge adds no delay. A gap waits at most Window from the arrival of
// the first frame after it for the other leg to fill it; then it is lost.
type Merger struct {
	window time.Duration
	emit   func(Frame)

	started bool
	// opened: the first frame of the session went out. Before, the merge
	// waits one window from the first arrival, so a frame that overtook
	// its predecessors does not become the start and make them late.
	opened bool
	first  time.Time
	now    time.Time // of the latest Push or Flush
	ssrc   uint32
	old    uint32 // the previous session's SSRC: its late frames are dropped
	next   uint64 // the next seq to emit
	lo     uint64 // the oldest seq in the ring (history starts here)
	hi     uint64 // one past the highest seq in the ring
	ring   [ringSize]slot
	free   [][]byte
	stats  Stats
}

// NewMerger returns a Merger that calls emit with each frame in order; the
// frame's payload is valid during the call. window <= 0 means
// DefaultWindow.
func NewMerger(window time.Duration, emit func(Frame)) *Merger {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Merger{window: window, emit: emit}
}

// Stats returns the counters.
func (m *Merger) Stats() Stats {
	s := m.stats
	s.Pending = 0
	for q := m.next; q < m.hi; q++ {
		if sl := m.at(q); sl.used {
			s.Pending++
		}
	}
	return s
}

// SetUp records that a leg's link came up or went down.
func (m *Merger) SetUp(leg int, up bool) {
	l := &m.stats.Legs[leg]
	if up == l.Up {
		return
	}
	l.Up = up
	if up {
		l.Ups++
		m.stats.LegsUp++
	} else {
		m.stats.LegsUp--
	}
}

func (m *Merger) at(seq uint64) *slot { return &m.ring[seq%ringSize] }

// Push takes a frame from leg at time now and emits what became ready.
func (m *Merger) Push(leg int, f Frame, now time.Time) {
	l := &m.stats.Legs[leg]
	l.Received++
	m.now = now
	switch {
	case !m.started:
		m.reset(f)
		m.first = now
	case f.SSRC == m.ssrc:
	case f.SSRC == m.old:
		l.Late++ // the other leg still carries the sender's last session
		return
	default:
		// the sender restarted: what is pending of its last session goes
		// out, and the new one starts
		m.flushAll()
		m.old = m.ssrc
		m.stats.Resets++
		m.reset(f)
		m.first = now
	}
	bit := uint8(1) << leg
	if !m.opened && f.Seq < m.next && m.hi-f.Seq <= ringSize {
		// earlier than the start, and nothing went out yet: start here
		for q := f.Seq; q < m.next; q++ {
			*m.at(q) = slot{seq: q}
		}
		m.next, m.lo = f.Seq, f.Seq
	}
	if f.Seq < m.next {
		if f.Seq < m.lo {
			l.Late++
			return
		}
		sl := m.at(f.Seq)
		switch {
		case sl.mask == 0:
			l.Late++ // declared lost: the window closed before it came
			if !sl.at.IsZero() {
				l.LateBy = max(l.LateBy, now.Sub(sl.at))
			}
		case sl.mask&bit == 0:
			l.Duplicates++
			sl.mask |= bit
		}
		return
	}
	if f.Seq >= m.hi {
		m.grow(f.Seq + 1)
	}
	sl := m.at(f.Seq)
	if sl.used {
		if sl.mask&bit == 0 {
			l.Duplicates++
			sl.mask |= bit
		}
		return
	}
	l.First++
	sl.used, sl.mask, sl.at = true, bit, now
	sl.buf = append(m.take(), f.Payload...)
	m.advance(now)
}

// Flush emits what waited a whole window for a gap before it; call it
// now and then (Receiver does, every quarter window).
func (m *Merger) Flush(now time.Time) { m.now = now; m.advance(now) }

func (m *Merger) reset(f Frame) {
	m.started, m.opened = true, false
	m.ssrc = f.SSRC
	for q := m.lo; q < m.hi; q++ {
		m.retire(m.at(q))
	}
	m.next, m.lo, m.hi = f.Seq, f.Seq, f.Seq
}

// grow makes room in the ring up to hi (exclusive): the oldest history is
// retired, and if the window itself overflows, its oldest frames are
// emitted and its oldest gaps given up as lost.
func (m *Merger) grow(hi uint64) {
	if hi-m.next > 2*ringSize {
		// a jump far ahead: everything in between is lost
		m.flushAll()
		for ; m.lo < m.hi; m.lo++ {
			m.retire(m.at(m.lo))
		}
		m.stats.Lost += hi - ringSize - m.next
		m.next, m.lo, m.hi = hi-ringSize, hi-ringSize, hi-ringSize
	}
	for hi-m.lo > ringSize {
		if m.lo == m.next {
			m.skipTo(m.next + 1)
		}
		m.retire(m.at(m.lo))
		m.lo++
	}
	for q := m.hi; q < hi; q++ {
		*m.at(q) = slot{seq: q}
	}
	m.hi = hi
}

// advance emits every frame whose predecessors are emitted, and gives up
// gaps that waited a window.
func (m *Merger) advance(now time.Time) {
	if !m.opened {
		if now.Sub(m.first) < m.window {
			return
		}
		m.opened = true
	}
	for m.next < m.hi {
		sl := m.at(m.next)
		if sl.used && !sl.emitted {
			m.emitSlot(sl)
			m.next++
			continue
		}
		// a gap at next: the first frame after it waited since its arrival
		q := m.next + 1
		for q < m.hi && !m.at(q).used {
			q++
		}
		if q == m.hi || now.Sub(m.at(q).at) < m.window {
			break
		}
		m.skipTo(q)
	}
	m.retireOld(now)
}

// retireOld forgets the history older than two windows: a copy that comes
// later is late, and the counts of which leg missed what are final.
func (m *Merger) retireOld(now time.Time) {
	for m.lo < m.next {
		sl := m.at(m.lo)
		if (sl.used || !sl.at.IsZero()) && now.Sub(sl.at) < 2*m.window {
			return // a given-up gap is kept as long, to tell how late a copy came
		}
		m.retire(sl)
		m.lo++
	}
}

// skipTo declares next..q-1 lost.
func (m *Merger) skipTo(q uint64) {
	for ; m.next < q; m.next++ {
		sl := m.at(m.next)
		if sl.used && !sl.emitted {
			m.emitSlot(sl)
			continue
		}
		sl.at = m.now // given up now: a copy that still comes was late by this much
		m.stats.Lost++
	}
}

// flushAll emits every pending frame in order, gaps counted as lost.
func (m *Merger) flushAll() {
	for q := m.next; q < m.hi; q++ {
		if sl := m.at(q); sl.used && !sl.emitted {
			m.emitSlot(sl)
		} else {
			m.stats.Lost++
		}
	}
	m.next = m.hi
}

func (m *Merger) emitSlot(sl *slot) {
	sl.emitted = true
	m.stats.Emitted++
	m.emit(Frame{SSRC: m.ssrc, Seq: sl.seq, Payload: sl.buf})
	m.free = append(m.free, sl.buf[:0])
	sl.buf = nil
}

// retire forgets a slot of the history, counting which leg missed it.
func (m *Merger) retire(sl *slot) {
	if sl.used && sl.emitted {
		switch sl.mask {
		case 1:
			m.stats.Legs[1].Recovered++
		case 2:
			m.stats.Legs[0].Recovered++
		}
	}
	if sl.buf != nil {
		m.free = append(m.free, sl.buf[:0])
	}
	*sl = slot{}
}

func (m *Merger) take() []byte {
	if n := len(m.free); n > 0 {
		b := m.free[n-1]
		m.free = m.free[:n-1]
		return b
	}
	return make([]byte, 0, TSPerPacket*tsSize)
}
