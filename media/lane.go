package media

import (
	"sync"
	"sync/atomic"
)

// Format is a wire family of a stream: FLV tag bodies (RTMP, HTTP-FLV) or
// MPEG-TS (SRT). A stream carries one lane per format; the publisher's own
// format is native and the other is produced by a remuxer only while
// somebody reads it.
type Format uint8

// Formats.
const (
	FormatFLV Format = iota
	FormatTS
	numFormats
)

func (f Format) String() string {
	if f == FormatTS {
		return "mpegts"
	}
	return "flv"
}

// header slots: the latest packet of each is replayed to new readers.
const (
	slotMeta = iota
	slotVideo
	slotAudio
	slotPSI
	numSlots
)

func headerSlot(p *Packet) int {
	switch p.Kind {
	case KindVideo:
		return slotVideo
	case KindAudio:
		return slotAudio
	case KindTS:
		return slotPSI
	}
	return slotMeta
}

// lane is a single-writer ring of packets. Readers hold their own cursor
// and never block the writer: the writer overwrites the oldest slot and a
// reader that finds its slot overwritten skips ahead.
type lane struct {
	ring []atomic.Pointer[Packet]
	mask uint64

	head    atomic.Uint64 // seq of the next packet to be written
	lastKey atomic.Uint64 // seq+1 of the newest keyframe, 0 if none
	lastT   atomic.Int64  // Time of the newest packet
	epoch   atomic.Uint64 // bumped when a new publisher session starts
	closed  atomic.Bool
	video   atomic.Bool // the lane has seen video: only video keyframes are random access points

	mu      sync.Mutex
	headers [numSlots]*Packet
	wakers  atomic.Pointer[[]chan struct{}]
	readers int
}

func newLane(size int) *lane {
	n := 1
	for n < size {
		n <<= 1
	}
	l := &lane{ring: make([]atomic.Pointer[Packet], n), mask: uint64(n - 1)}
	empty := []chan struct{}{}
	l.wakers.Store(&empty)
	return l
}

// write appends p. Only the stream's single writer calls it.
func (l *lane) write(p *Packet) {
	seq := l.head.Load()
	p.seq = seq
	if p.Header {
		l.mu.Lock()
		l.headers[headerSlot(p)] = p
		l.mu.Unlock()
		if p.Kind == KindVideo {
			l.video.Store(true)
		}
	}
	l.ring[seq&l.mask].Store(p)
	l.lastT.Store(p.Time)
	if l.isKey(p) {
		l.lastKey.Store(seq + 1)
	}
	l.head.Store(seq + 1)
	l.wake()
}

func (l *lane) isKey(p *Packet) bool {
	if p.Header {
		return false
	}
	if p.Keyframe {
		return true
	}
	return p.Kind == KindAudio && !l.video.Load()
}

func (l *lane) wake() {
	for _, c := range *l.wakers.Load() {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (l *lane) close() {
	l.closed.Store(true)
	l.wake()
}

func (l *lane) addWaker(c chan struct{}) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.wakers.Load()
	nw := make([]chan struct{}, len(old), len(old)+1)
	copy(nw, old)
	nw = append(nw, c)
	l.wakers.Store(&nw)
	l.readers++
	return l.readers
}

func (l *lane) removeWaker(c chan struct{}) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.wakers.Load()
	nw := make([]chan struct{}, 0, len(old))
	for _, o := range old {
		if o != c {
			nw = append(nw, o)
		}
	}
	l.wakers.Store(&nw)
	l.readers--
	return l.readers
}

// snapshotHeaders returns the current headers in replay order.
func (l *lane) snapshotHeaders(dst []*Packet) []*Packet {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.headers {
		if h != nil {
			dst = append(dst, h)
		}
	}
	return dst
}

// at returns the packet with sequence seq, or nil if it was overwritten.
func (l *lane) at(seq uint64) *Packet {
	p := l.ring[seq&l.mask].Load()
	if p == nil || p.seq != seq {
		return nil
	}
	return p
}

// startSeq is where a new reader begins: the newest keyframe still in the
// ring (the GOP cache), else the head (the reader then waits for a key).
func (l *lane) startSeq() (seq uint64, needKey bool) {
	head := l.head.Load()
	if k := l.lastKey.Load(); k > 0 && head-(k-1) <= uint64(len(l.ring)) {
		if l.at(k-1) != nil {
			return k - 1, false
		}
	}
	return head, true
}
