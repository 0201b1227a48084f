package gossip

import (
	"sort"
	"sync"
	"time"
)

// lwwEntry is an entry of a replicated map in which the newer claim wins
// everywhere (the stream directory's DirEntry, the flow directory's
// FlowEntry): ordered by a hybrid logical clock, a deletion leaves a
// tombstone.
type lwwEntry[E any] interface {
	key() string
	owner() string
	tombstone() bool
	stamp() uint64
	updatedAt() time.Time
	withUpdated(time.Time) E
	newerThan(E) bool
}

// lww is such a map: one lock, one clock (never below the wall clock in
// microseconds, always above every version seen), one change channel.
type lww[E lwwEntry[E]] struct {
	mu      sync.Mutex
	clock   uint64
	entries map[string]E
	now     func() time.Time
	changed chan struct{} // closed and replaced whenever an entry changes
}

func newLWW[E lwwEntry[E]]() lww[E] {
	return lww[E]{entries: map[string]E{}, now: time.Now, changed: make(chan struct{})}
}

// changedLocked wakes the waiters of the current change channel.
func (d *lww[E]) changedLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// watch returns a channel closed at the next change of any entry.
func (d *lww[E]) watch() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// tickLocked returns a new version above everything seen.
func (d *lww[E]) tickLocked() uint64 {
	d.clock++
	if wall := uint64(d.now().UnixMicro()); wall > d.clock {
		d.clock = wall
	}
	return d.clock
}

// apply merges a remote entry. ownerGone says the owner is known to be dead
// or to have left: a live claim of its is then ignored. It returns whether
// the map changed.
func (d *lww[E]) apply(e E, ownerGone bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.stamp() > d.clock {
		d.clock = e.stamp()
	}
	if !e.tombstone() && ownerGone {
		return false
	}
	if cur, ok := d.entries[e.key()]; ok && !e.newerThan(cur) {
		return false
	}
	d.entries[e.key()] = e.withUpdated(d.now())
	d.changedLocked()
	return true
}

// dropOwner forgets every entry owned by node and returns the keys of the
// live ones, sorted.
func (d *lww[E]) dropOwner(node string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var dropped []string
	n := 0
	for k, e := range d.entries {
		if e.owner() == node {
			delete(d.entries, k)
			n++
			if !e.tombstone() {
				dropped = append(dropped, k)
			}
		}
	}
	if n > 0 {
		d.changedLocked()
	}
	sort.Strings(dropped)
	return dropped
}

// gc removes tombstones older than ttl.
func (d *lww[E]) gc(ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cutoff := d.now().Add(-ttl)
	for k, e := range d.entries {
		if e.tombstone() && e.updatedAt().Before(cutoff) {
			delete(d.entries, k)
		}
	}
}

func (d *lww[E]) lookup(key string) (E, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[key]
	return e, ok
}

// snapshot returns every entry, tombstones included, sorted by key.
func (d *lww[E]) snapshot() []E {
	d.mu.Lock()
	out := make([]E, 0, len(d.entries))
	for _, e := range d.entries {
		out = append(out, e)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}
