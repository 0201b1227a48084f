package main

import (
	"container/heap"
	"math/rand/v2"
	"time"

	"github.com/relaymesh/relaymesh/test/impair/control"
)

// pair is one direction between two IPv4 addresses.
type pair struct{ src, dst [4]byte }

// fate is what happens to one packet.
type fate int

const (
	fateAccept    fate = iota // accept now
	fateDelay                 // accept at the due time
	fateLost                  // drop: loss probability
	fateBlackhole             // drop: source or destination blackholed
)

// engine decides each packet's fate from the current config and holds the
// delayed ones until they are due. It is owned by one goroutine.
type engine struct {
	links map[pair]control.Link
	black map[[4]byte]bool
	rng   *rand.Rand
	// lastDue per direction keeps packet order within a direction when
	// jitter or a config change would reorder them.
	lastDue map[pair]time.Time
	q       dueHeap
	seq     uint64
	// late and maxLate: packets released more than
	// control.LateThreshold after their due time, and the worst.
	late    uint64
	maxLate time.Duration
}

func newEngine(seed uint64) *engine {
	return &engine{
		links:   map[pair]control.Link{},
		black:   map[[4]byte]bool{},
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		lastDue: map[pair]time.Time{},
	}
}

// setConfig replaces the matrix and blackholes. cfg must be valid.
// Packets already held keep their due time.
func (e *engine) setConfig(cfg control.Config) {
	e.links = make(map[pair]control.Link, len(cfg.Links))
	for _, l := range cfg.Links {
		e.links[pair{l.Src.As4(), l.Dst.As4()}] = l
	}
	e.black = make(map[[4]byte]bool, len(cfg.Blackhole))
	for _, a := range cfg.Blackhole {
		e.black[a.As4()] = true
	}
}

// decide returns the fate of a packet from h seen at now, and for
// fateDelay the time it is due.
func (e *engine) decide(h ipv4Header, now time.Time) (fate, time.Time) {
	if e.black[h.Src] || e.black[h.Dst] {
		return fateBlackhole, time.Time{}
	}
	p := pair{h.Src, h.Dst}
	l, ok := e.links[p]
	if !ok {
		return e.orderAfterPending(p, now)
	}
	if l.Loss > 0 && e.rng.Float64() < l.Loss {
		return fateLost, time.Time{}
	}
	d := time.Duration(l.Delay)
	if l.Jitter > 0 {
		d += time.Duration(e.rng.Int64N(int64(l.Jitter) + 1))
	}
	if d <= 0 {
		return e.orderAfterPending(p, now)
	}
	due := now.Add(d)
	if last := e.lastDue[p]; due.Before(last) {
		due = last
	}
	e.lastDue[p] = due
	return fateDelay, due
}

// orderAfterPending accepts a packet at once unless packets of the same
// direction are still held (the delay was just lowered): then it waits
// behind them.
func (e *engine) orderAfterPending(p pair, now time.Time) (fate, time.Time) {
	if last, ok := e.lastDue[p]; ok && last.After(now) {
		return fateDelay, last
	}
	delete(e.lastDue, p)
	return fateAccept, time.Time{}
}

// hold queues packet id until due.
func (e *engine) hold(id uint32, due time.Time) {
	e.seq++
	heap.Push(&e.q, held{due: due, seq: e.seq, id: id})
}

// next reports when the earliest held packet is due.
func (e *engine) next() (time.Time, bool) {
	if len(e.q) == 0 {
		return time.Time{}, false
	}
	return e.q[0].due, true
}

// release appends the ids of all packets due at or before now to ids, in
// due order (ties in arrival order).
func (e *engine) release(now time.Time, ids []uint32) []uint32 {
	for len(e.q) > 0 && !e.q[0].due.After(now) {
		h := heap.Pop(&e.q).(held)
		if l := now.Sub(h.due); l > control.LateThreshold {
			e.late++
			e.maxLate = max(e.maxLate, l)
		}
		ids = append(ids, h.id)
	}
	if len(e.q) == 0 {
		// Nothing held: order state is no longer needed.
		clear(e.lastDue)
	}
	return ids
}

func (e *engine) pending() int { return len(e.q) }

type held struct {
	due time.Time
	seq uint64
	id  uint32
}

// dueHeap is a min-heap of held packets by due time, then arrival.
type dueHeap []held

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
