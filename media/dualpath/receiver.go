package dualpath

import (
	"context"
	"sync"
	"time"
)

// Receiver is a Merger safe for concurrent use by the legs' readers, on
// the wall clock; Run gives up gaps when no frame comes to push them.
type Receiver struct {
	window time.Duration
	mu     sync.Mutex
	m      *Merger
}

// NewReceiver returns a Receiver; emit is called with the merged frames in
// order, one call at a time.
func NewReceiver(window time.Duration, emit func(Frame)) *Receiver {
	m := NewMerger(window, emit)
	return &Receiver{window: m.window, m: m}
}

// Window returns the reorder window.
func (r *Receiver) Window() time.Duration { return r.window }

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

// Run flushes the merger every quarter window until ctx ends.
func (r *Receiver) Run(ctx context.Context) error {
	tk := time.NewTicker(max(r.window/4, 5*time.Millisecond))
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
