package dualpath

import (
	"context"
	"sync"
	"time"
)

// Receiver is a Merger safe for concurrent use by the legs' readers, on
// the wall clock; Run gives up gaps when no frame comes to push them.
type Receiver struct {
	mu sync.Mutex
	m  *Merger
}

// NewReceiver returns a Receiver; emit is called with the merged frames in
// order, one call at a time.
func NewReceiver(window time.Duration, emit func(Frame)) *Receiver {
	return &Receiver{m: NewMerger(window, emit)}
}

// Window returns the reorder window.
func (r *Receiver) Window() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.window
}

// SetWindow changes the reorder window (d <= 0 is ignored): the receiver
// learnt how far behind one leg runs.
func (r *Receiver) SetWindow(d time.Duration) {
	if d <= 0 {
		return
	}
	r.mu.Lock()
	r.m.window = d
	r.mu.Unlock()
}

// Push merges a frame that arrived on leg.
func (r *Receiver) Push(leg int, f Frame) {
	r.mu.Lock()
	r.m.Push(leg, f, time.Now())
	r.mu.Unlock()
}

// SetUp records that leg's link came up or went down.
func (r *Receiver) SetUp(leg int, up bool) {
	r.mu.Lock()
	r.m.SetUp(leg, up)
	r.mu.Unlock()
}

// Stats returns the merge counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Stats()
}

// Drain emits every frame still waiting (gaps before them count as lost),
// then calls done, both under the lock emit runs under: the stream ends.
func (r *Receiver) Drain(done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m.started {
		r.m.flushAll()
	}
	done()
}

// Run flushes the merger every quarter window until ctx ends.
func (r *Receiver) Run(ctx context.Context) error {
	tk := time.NewTicker(max(r.Window()/4, 5*time.Millisecond))
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tk.C:
			r.mu.Lock()
			r.m.Flush(now)
			r.mu.Unlock()
		}
	}
}
