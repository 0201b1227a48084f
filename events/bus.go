package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrClosed is what Next returns once the subscription or the bus is
// closed (after a closed bus's queued records were delivered).
var ErrClosed = errors.New("event subscription closed")

// DefaultQueue is the queue size Subscribe uses for size <= 0.
const DefaultQueue = 1024

// Bus assigns every published event the next sequence number and appends
// it to each subscriber's queue. A nil *Bus drops what is published, so a
// component built without one needs no checks.
type Bus struct {
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	seq       uint64
	subs      []*Subscription
	published map[Kind]uint64
	closed    bool
}

// New returns an open bus; log receives the overflow warnings.
func New(log *slog.Logger) *Bus {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{log: log.With("component", "events"), now: time.Now, published: map[Kind]uint64{}}
}

// Publish appends e to every subscriber's queue and returns its sequence
// number (0 when the bus is nil or closed). It never blocks on a
// subscriber, so it may be called with the publisher's own lock held:
// that is what puts events of one stream in the order of its changes.
func (b *Bus) Publish(e Event) uint64 {
	if b == nil || e == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0
	}
	b.seq++
	b.published[e.Kind()]++
	r := Record{Seq: b.seq, Time: b.now(), Event: e}
	for _, s := range b.subs {
		s.push(r)
	}
	return r.Seq
}

// Subscribe returns a subscription that receives every event published
// from now on, in order. size bounds its queue (DefaultQueue for <= 0; at
// least 2, room for a Missed record and the event after it). name says
// who it is in logs and Stats.
func (b *Bus) Subscribe(name string, size int) *Subscription {
	if size <= 0 {
		size = DefaultQueue
	}
	size = max(size, 2)
	s := &Subscription{b: b, name: name, size: size, wake: make(chan struct{}, 1)}
	if b == nil {
		s.ended = true // a nil bus publishes nothing
		return s
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.ended = true
		return s
	}
	b.subs = append(b.subs, s)
	return s
}

// Close ends the bus: Publish becomes a no-op and each subscription
// delivers what it holds, then reports ErrClosed. It is idempotent.
func (b *Bus) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for _, s := range b.subs {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		s.signal()
	}
	b.subs = nil
	return nil
}

// Stats is what the bus has done so far.
type Stats struct {
	Published   map[Kind]uint64
	Subscribers []SubscriberStats
}

// SubscriberStats is one subscription's counters.
type SubscriberStats struct {
	Name      string
	Queued    int
	Delivered uint64
	Missed    uint64 // events lost because the queue was full
}

// Stats returns a copy of the counters, subscribers in subscription order.
func (b *Bus) Stats() Stats {
	st := Stats{Published: map[Kind]uint64{}}
	if b == nil {
		return st
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, n := range b.published {
		st.Published[k] = n
	}
	for _, s := range b.subs {
		s.mu.Lock()
		st.Subscribers = append(st.Subscribers, SubscriberStats{Name: s.name, Queued: s.n, Delivered: s.delivered, Missed: s.missed})
		s.mu.Unlock()
	}
	return st
}

func (b *Bus) remove(s *Subscription) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.subs {
		if x == s {
			b.subs = append(b.subs[:i], b.subs[i+1:]...)
			return
		}
	}
}

// Subscription is one subscriber's ordered queue.
type Subscription struct {
	b    *Bus
	name string
	size int
	wake chan struct{}

	mu        sync.Mutex
	ring      []Record // size slots, used from head for n
	head, n   int
	gap       Missed // events lost since the last delivered one
	missed    uint64
	delivered uint64
	ended     bool // the bus closed: deliver what is queued, then ErrClosed
	closed    bool // Close was called: ErrClosed at once
}

// push queues r; called with the bus lock held.
func (s *Subscription) push(r Record) {
	s.mu.Lock()
	if s.closed || s.ended {
		s.mu.Unlock()
		return
	}
	if s.ring == nil {
		s.ring = make([]Record, s.size)
	}
	need := 1
	if s.gap.N > 0 {
		need = 2
	}
	if s.n+need > s.size {
		if s.gap.N == 0 {
			s.gap.First = r.Seq
			s.b.log.Warn("event subscriber fell behind; it loses events until it catches up and is told how many",
				"subscriber", s.name, "queue", s.size, "seq", r.Seq)
		}
		s.gap.N++
		s.gap.Last = r.Seq
		s.missed++
		s.mu.Unlock()
		return
	}
	if s.gap.N > 0 {
		s.putLocked(s.gapRecordLocked(r.Time))
	}
	s.putLocked(r)
	s.mu.Unlock()
	s.signal()
}

func (s *Subscription) putLocked(r Record) {
	s.ring[(s.head+s.n)%s.size] = r
	s.n++
}

// gapRecordLocked turns the pending gap into its Missed record.
func (s *Subscription) gapRecordLocked(at time.Time) Record {
	g := s.gap
	s.gap = Missed{}
	s.b.log.Warn("event subscriber missed events", "subscriber", s.name, "missed", g.N, "first_seq", g.First, "last_seq", g.Last)
	return Record{Seq: g.Last, Time: at, Event: g}
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Next returns the next record, waiting for one until ctx ends. A
// [Missed] record stands where events were lost. After Close, or once a
// closed bus's records are delivered, it returns ErrClosed.
func (s *Subscription) Next(ctx context.Context) (Record, error) {
	for {
		if r, ok, err := s.take(); ok || err != nil {
			return r, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		}
	}
}

// take returns the next queued record without waiting.
func (s *Subscription) take() (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return Record{}, false, ErrClosed
	case s.n > 0:
		r := s.ring[s.head]
		s.ring[s.head] = Record{}
		s.head = (s.head + 1) % s.size
		s.n--
		s.delivered++
		return r, true, nil
	case s.gap.N > 0:
		s.delivered++
		return s.gapRecordLocked(s.b.now()), true, nil
	case s.ended:
		return Record{}, false, ErrClosed
	}
	return Record{}, false, nil
}

// Run calls fn with each record, in order, until the subscription or the
// bus is closed, or ctx ends; then it delivers what is already queued
// (events published before the end, e.g. streams ended by a shutdown
// drain) and returns. The caller owns the goroutine it runs on.
func (s *Subscription) Run(ctx context.Context, fn func(Record)) error {
	for {
		r, err := s.Next(ctx)
		switch {
		case err == nil:
			fn(r)
		case errors.Is(err, ErrClosed):
			return nil
		default: // ctx ended
			for {
				r, ok, err := s.take()
				if !ok || err != nil {
					return nil
				}
				fn(r)
			}
		}
	}
}

// Close unsubscribes: what is queued is dropped and Next returns
// ErrClosed. It is idempotent.
func (s *Subscription) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.ring, s.n = nil, 0
	s.mu.Unlock()
	s.signal()
	s.b.remove(s)
	return nil
}

// Name returns the name given to Subscribe.
func (s *Subscription) Name() string { return s.name }
