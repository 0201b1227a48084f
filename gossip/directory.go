package gossip

import (
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

func (e DirEntry) key() string                      { return e.Stream }
func (e DirEntry) owner() string                    { return e.Node }
func (e DirEntry) tombstone() bool                  { return e.Deleted }
func (e DirEntry) stamp() uint64                    { return e.Version }
func (e DirEntry) updatedAt() time.Time             { return e.Updated }
func (e DirEntry) withUpdated(t time.Time) DirEntry { e.Updated = t; return e }

// directory is the replicated map of streams to owners (lww.go).
type directory struct{ lww[DirEntry] }

func newDirectory() *directory { return &directory{newLWW[DirEntry]()} }

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
