package media

import (
	"sync"
	"sync/atomic"

	"github.com/relaymesh/relaymesh/media/unit"
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

// The lane and its readers keep headers in unit's slots.
const numSlots = unit.NumSlots

func headerSlot(p *unit.Packet) int { return unit.HeaderSlot(p) }

// lane is a single-writer ring of packets. Readers hold their own cursor
// and never block the writer: the writer releases the oldest packets and a
// reader that finds its packet released skips ahead.
//
// What a lane keeps is sized by the media, not by a packet count: the
// newest GOP (from the newest keyframe on, the GOP cache new readers start
// from) plus the packets of at most slackTime ms and slack bytes before
// it, for readers a few packets behind, and never more than maxBytes or
// maxSlots packets in all. Of the slack only what an attached reader has
// yet to read is kept: a packet before the newest keyframe that every
// reader is past can reach nobody (new readers start at the keyframe), so
// the lane of a stream whose readers keep up holds the GOP alone. The
// slot array starts small, grows to what one GOP needs and is not
// allocated at all for a lane nobody writes (the TS lane of an RTMP stream
// without SRT readers).
type lane struct {
	ring     atomic.Pointer[ring]
	maxSlots int
	maxBytes int64
	slack    int64
	// slackTime bounds the slack in media time (ms): 64 KiB is 1.7 s of
	// a 300 kbit/s stream, nearly a second GOP kept per stream
	slackTime int64

	head    atomic.Uint64 // seq of the next packet to be written
	tail    atomic.Uint64 // seq of the oldest packet kept
	lastKey atomic.Uint64 // seq+1 of the newest keyframe, 0 if none
	lastT   atomic.Int64  // Time of the newest packet
	epoch   atomic.Uint64 // bumped when a new publisher session starts
	closed  atomic.Bool
	video   atomic.Bool // the lane has seen video: only video keyframes are random access points

	// writer only
	bytes    int64 // cost of the packets in [tail, head)
	keyBytes int64 // of those, the packets from the newest keyframe on
	keyT     int64 // Time of the newest keyframe

	mu      sync.Mutex
	headers [numSlots]*unit.Packet
	wakers  atomic.Pointer[[]chan struct{}]
	// rds are the attached readers, whose positions (Reader.pos) say
	// which packets before the newest keyframe are still to be read
	rds atomic.Pointer[[]*Reader]
	fan atomic.Pointer[[]*fanout] // the lane's fan-out writers, one per core, made on first use
}

// ring is a lane's slot array; the writer replaces it with a larger copy
// when the kept packets outgrow it, readers load it once per lookup.
type ring struct {
	slots []atomic.Pointer[unit.Packet]
	mask  uint64
}

// firstSlots is the slot array a lane starts with.
const firstSlots = 64

// packetCost is what a packet costs beyond its payload (the Packet and
// its slot), counted against a lane's byte limits.
const packetCost = 128

func cost(p *unit.Packet) int64 { return int64(len(p.Payload)) + packetCost }

func newLane(maxSlots int, maxBytes, slack, slackTime int64) *lane {
	n := 1
	for n < maxSlots {
		n <<= 1
	}
	l := &lane{maxSlots: n, maxBytes: maxBytes, slack: slack, slackTime: slackTime}
	empty := []chan struct{}{}
	l.wakers.Store(&empty)
	none := []*Reader{}
	l.rds.Store(&none)
	return l
}

// write appends p and wakes the readers. Only the stream's single writer
// calls it.
func (l *lane) write(p *unit.Packet) {
	l.put(p)
	l.wake()
}

// put appends p without waking the readers (a batching publisher wakes
// them once for several packets).
func (l *lane) put(p *unit.Packet) {
	seq := l.head.Load()
	p.SetSeq(seq)
	if p.Header {
		l.mu.Lock()
		l.headers[headerSlot(p)] = p
		l.mu.Unlock()
		if p.Kind == unit.KindVideo {
			l.video.Store(true)
		}
	}
	r := l.room(seq)
	r.slots[seq&r.mask].Store(p)
	c := cost(p)
	l.bytes += c
	l.lastT.Store(p.Time)
	if l.isKey(p) {
		l.lastKey.Store(seq + 1)
		l.keyBytes = c
		l.keyT = p.Time
	} else if l.lastKey.Load() > 0 {
		l.keyBytes += c
	}
	l.head.Store(seq + 1)
	l.trim(r)
}

// room returns a ring with a free slot for seq: the current one, a larger
// copy of it, or the current one after releasing the oldest packet.
func (l *lane) room(seq uint64) *ring {
	r := l.ring.Load()
	tail := l.tail.Load()
	if r != nil && seq-tail < uint64(len(r.slots)) {
		return r
	}
	if r == nil || len(r.slots) < l.maxSlots {
		n := firstSlots
		if r != nil {
			n = 2 * len(r.slots)
		}
		n = min(n, l.maxSlots)
		nr := &ring{slots: make([]atomic.Pointer[unit.Packet], n), mask: uint64(n - 1)}
		for s := tail; s < seq; s++ {
			nr.slots[s&nr.mask].Store(r.slots[s&r.mask].Load())
		}
		l.ring.Store(nr)
		return nr
	}
	l.release(r)
	return r
}

// trim releases the oldest packets while the lane keeps more than its
// limits allow: packets before the newest keyframe beyond the slack (in
// bytes, or older than slackTime before the keyframe) or that every
// attached reader is past, or bytes in all beyond maxBytes (then the GOP
// cache itself goes, and new readers wait for the next keyframe). The
// newest packet always stays.
func (l *lane) trim(r *ring) {
	read := uint64(0) // every reader is past the packets before it; 0: not looked yet
	for head := l.head.Load(); l.tail.Load()+1 < head; {
		tail := l.tail.Load()
		k := l.lastKey.Load()
		inGOP := k > 0 && tail >= k-1
		switch {
		case l.bytes > l.maxBytes:
		case inGOP:
			return
		case l.bytes-l.keyBytes > l.slack:
		case k > 0 && l.slackTime > 0 && l.olderThan(r, tail, l.keyT-l.slackTime):
		case k > 0 && tail < l.readTo(&read, head):
		default:
			return
		}
		l.release(r)
	}
}

// readTo returns the lowest position of the lane's readers (head when it
// has none), computed once per trim into *read.
func (l *lane) readTo(read *uint64, head uint64) uint64 {
	if *read == 0 {
		lo := head
		for _, rd := range *l.rds.Load() {
			lo = min(lo, rd.pos.Load())
		}
		*read = lo
	}
	return *read
}

// olderThan says whether the kept packet seq is from before t.
func (l *lane) olderThan(r *ring, seq uint64, t int64) bool {
	p := r.slots[seq&r.mask].Load()
	return p != nil && p.Seq() == seq && p.Time < t
}

// release drops the oldest kept packet.
func (l *lane) release(r *ring) {
	tail := l.tail.Load()
	slot := &r.slots[tail&r.mask]
	if p := slot.Load(); p != nil && p.Seq() == tail {
		l.bytes -= cost(p)
		if k := l.lastKey.Load(); k > 0 && tail >= k-1 {
			// the GOP cache itself goes: over maxBytes
			l.keyBytes -= cost(p)
		}
		slot.Store(nil)
	}
	l.tail.Store(tail + 1)
}

// clear releases every kept packet (the latest headers stay for new
// readers): no GOP is kept until the next keyframe. Only the writer calls
// it.
func (l *lane) clear() {
	r := l.ring.Load()
	if r == nil {
		return
	}
	for l.tail.Load() < l.head.Load() {
		l.release(r)
	}
	l.lastKey.Store(0)
	l.bytes, l.keyBytes = 0, 0
}

func (l *lane) isKey(p *unit.Packet) bool {
	if p.Header {
		return false
	}
	if p.Keyframe {
		return true
	}
	return p.Kind == unit.KindAudio && !l.video.Load()
}

func (l *lane) wake() {
	if fs := l.fan.Load(); fs != nil {
		for _, f := range *fs {
			f.poke()
		}
	}
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

// addReader wakes rd on new packets and keeps what it has yet to read,
// from its position on; it returns the count of readers. rd is attached
// before it has a cursor: the lane keeps its slack for it until it has
// one (a position of 0).
func (l *lane) addReader(rd *Reader) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wakers.Store(with(*l.wakers.Load(), rd.wake))
	rds := with(*l.rds.Load(), rd)
	l.rds.Store(rds)
	return len(*rds)
}

// removeReader detaches rd; it returns the count of readers left.
func (l *lane) removeReader(rd *Reader) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wakers.Store(without(*l.wakers.Load(), rd.wake))
	rds := without(*l.rds.Load(), rd)
	l.rds.Store(rds)
	return len(*rds)
}

// unwake stops waking c and keeps its reader counted: the reader of a
// player the fan-out writer serves, which is polled instead.
func (l *lane) unwake(c chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wakers.Store(without(*l.wakers.Load(), c))
}

// with and without return a copy of s with x added or removed: the
// lane's lists are copied on write, for the writer to read without a
// lock.
func with[T comparable](s []T, x T) *[]T {
	n := make([]T, len(s), len(s)+1)
	copy(n, s)
	n = append(n, x)
	return &n
}

func without[T comparable](s []T, x T) *[]T {
	n := make([]T, 0, len(s))
	for _, o := range s {
		if o != x {
			n = append(n, o)
		}
	}
	return &n
}

// snapshotHeaders returns the current headers in replay order.
func (l *lane) snapshotHeaders(dst []*unit.Packet) []*unit.Packet {
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
func (l *lane) at(seq uint64) *unit.Packet {
	r := l.ring.Load()
	if r == nil || seq < l.tail.Load() {
		return nil
	}
	p := r.slots[seq&r.mask].Load()
	if p == nil || p.Seq() != seq {
		return nil
	}
	return p
}

// startSeq is where a new reader begins: the newest keyframe if it is still
// kept (the GOP cache), else the head (the reader then waits for a key).
func (l *lane) startSeq() (seq uint64, needKey bool) {
	head := l.head.Load()
	if k := l.lastKey.Load(); k > 0 && k-1 >= l.tail.Load() {
		if l.at(k-1) != nil {
			return k - 1, false
		}
	}
	return head, true
}
