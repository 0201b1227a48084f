package gossip

import (
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// DirEntry says which node hosts a stream. Entries are ordered by Version,
// a hybrid logical clock (never below the wall clock in microseconds, always
// above every version seen), so the newer claim wins everywhere; ties go to
// the larger node name. Deleted entries are tombstones kept for
// Timings.TombstoneTTL so an old claim cannot come back.
type DirEntry struct {
	Stream  string    // "app/name"
	Node    string    // owner node name
	Version uint64    // hybrid logical clock
	Deleted bool      // tombstone: the stream was unpublished
	Updated time.Time // when this node learned of it (local clock)
}

func (e DirEntry) newerThan(o DirEntry) bool {
	if e.Version != o.Version {
		return e.Version > o.Version
	}
	if e.Node != o.Node {
		return e.Node > o.Node
	}
	return e.Deleted && !o.Deleted
}

// directory is the replicated map of streams to owners.
type directory struct {
	mu      sync.Mutex
	clock   uint64
	entries map[string]DirEntry
	now     func() time.Time
	changed chan struct{} // closed and replaced whenever an entry changes
}

func newDirectory() *directory {
	return &directory{entries: make(map[string]DirEntry), now: time.Now, changed: make(chan struct{})}
}

// changedLocked wakes the waiters of the current change channel.
func (d *directory) changedLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// watch returns a channel closed at the next change of any entry.
func (d *directory) watch() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// tick returns a new version above everything seen.
func (d *directory) tickLocked() uint64 {
	d.clock++
	if wall := uint64(d.now().UnixMicro()); wall > d.clock {
		d.clock = wall
	}
	return d.clock
}

// claim records that node hosts stream and returns the entry to broadcast.
func (d *directory) claim(stream, node string) DirEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := DirEntry{Stream: stream, Node: node, Version: d.tickLocked(), Updated: d.now()}
	d.entries[stream] = e
	d.changedLocked()
	return e
}

// release tombstones stream if node owns it. ok is false when it does not.
func (d *directory) release(stream, node string) (DirEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, found := d.entries[stream]
	if !found || cur.Deleted || cur.Node != node {
		return DirEntry{}, false
	}
	e := DirEntry{Stream: stream, Node: node, Version: d.tickLocked(), Deleted: true, Updated: d.now()}
	d.entries[stream] = e
	d.changedLocked()
	return e, true
}

// apply merges a remote entry. ownerGone says the owner is known to be dead
// or to have left: a live claim of its is then ignored. It returns whether
// the directory changed.
func (d *directory) apply(e DirEntry, ownerGone bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.Version > d.clock {
		d.clock = e.Version
	}
	if !e.Deleted && ownerGone {
		return false
	}
	if cur, ok := d.entries[e.Stream]; ok && !e.newerThan(cur) {
		return false
	}
	e.Updated = d.now()
	d.entries[e.Stream] = e
	d.changedLocked()
	return true
}

// dropOwner forgets every entry owned by node and returns the streams.
func (d *directory) dropOwner(node string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var dropped []string
	for k, e := range d.entries {
		if e.Node == node {
			delete(d.entries, k)
			if !e.Deleted {
				dropped = append(dropped, k)
			}
		}
	}
	if len(dropped) > 0 {
		d.changedLocked()
	}
	sort.Strings(dropped)
	return dropped
}

// gc removes tombstones older than ttl.
func (d *directory) gc(ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cutoff := d.now().Add(-ttl)
	for k, e := range d.entries {
		if e.Deleted && e.Updated.Before(cutoff) {
			delete(d.entries, k)
		}
	}
}

func (d *directory) lookup(stream string) (DirEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[stream]
	return e, ok
}

// snapshot returns every entry, tombstones included, sorted by stream.
func (d *directory) snapshot() []DirEntry {
	d.mu.Lock()
	out := make([]DirEntry, 0, len(d.entries))
	for _, e := range d.entries {
		out = append(out, e)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// dirBroadcast is one directory entry queued for gossip. A newer entry for
// the same stream replaces a queued older one.
type dirBroadcast struct {
	stream string
	msg    []byte
}

func (b *dirBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*dirBroadcast)
	return ok && o.stream == b.stream
}

// Name makes dirBroadcast a memberlist.NamedBroadcast.
func (b *dirBroadcast) Name() string    { return "dir:" + b.stream }
func (b *dirBroadcast) Message() []byte { return b.msg }
func (b *dirBroadcast) Finished()       {}
