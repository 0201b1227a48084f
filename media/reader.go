package media

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// Errors a reader's Next returns.
var (
	ErrStreamEnded = errors.New("stream ended")
	ErrSlowReader  = errors.New("reader stayed behind the live edge and was disconnected")
)

// ReaderInfo describes a reader for the API.
type ReaderInfo struct {
	Protocol string    `json:"protocol"`
	Remote   string    `json:"remote"`
	Since    time.Time `json:"since"`
}

// Reader follows one lane of a stream from its own cursor. It is used by
// one goroutine.
type Reader struct {
	s    *Stream
	l    *lane
	fmt  Format
	info ReaderInfo

	wake chan struct{}
	done chan struct{}
	once sync.Once

	cursor uint64
	// pos is the cursor as the lane's writer sees it: the lane keeps
	// the packets from pos on (0: all it would keep anyway). It lags the
	// cursor by at most one batch (published when the next one is
	// asked for and before the reader waits), never leads it.
	pos         atomic.Uint64
	sent        [numSlots]*unit.Packet // the header last delivered per slot
	needKey     bool
	sendHeaders bool
	epoch       uint64

	skipTimes []time.Time

	// coalesce makes Next hand out packets at most once per window, so a
	// player wakes and writes once per window instead of once per packet
	// (fewer goroutine wakes and syscalls, at most one window of delay).
	coalesce time.Duration
	lastOut  time.Time
	timer    *time.Timer

	BytesOut atomic.Uint64
	skipped  atomic.Uint64
}

// Info returns the reader's description.
func (r *Reader) Info() ReaderInfo { return r.info }

// Stream returns the stream the reader follows.
func (r *Reader) Stream() *Stream { return r.s }

// Skipped returns how many packets the reader skipped because it fell behind.
func (r *Reader) Skipped() uint64 { return r.skipped.Load() }

// Next blocks until packets are available and appends up to cap(dst)
// packets to dst[:0]; what an earlier batch left in dst's array (up to its first nil) is cleared. The first call returns the stream's headers, then
// the GOP cache. A reader that fell behind skips to the newest keyframe
// (and gets the headers again); one that keeps falling behind gets
// ErrSlowReader.
func (r *Reader) Next(ctx context.Context, dst []*unit.Packet) ([]*unit.Packet, error) {
	return r.next(ctx, dst, true)
}

// poll is Next without waiting: it returns no packets and no error when
// none are ready. The fan-out writer uses it; coalescing does not apply.
func (r *Reader) poll(dst []*unit.Packet) ([]*unit.Packet, error) {
	return r.next(nil, dst, false)
}

func (r *Reader) next(ctx context.Context, dst []*unit.Packet, wait bool) ([]*unit.Packet, error) {
	// the caller is done with what the last call returned: drop those
	// references, or a batch of the GOP cache would keep its packets
	// alive (for every reader, long after the lane released them)
	// (a batch fills the array from its start and the rest stays nil,
	// so clearing stops at the first nil, not at the array's end)
	dst = dst[:0]
	for i, all := 0, dst[:cap(dst)]; i < len(all) && all[i] != nil; i++ {
		all[i] = nil
	}
	r.pos.Store(r.cursor)
	max := cap(dst)
	if max == 0 {
		max = 64
	}
	if wait && r.coalesce > 0 {
		if err := r.waitWindow(ctx); err != nil {
			return dst, err
		}
	}
	for {
		if ep := r.l.epoch.Load(); ep != r.epoch {
			// A new publisher session: resume at its first keyframe.
			r.epoch = ep
			r.needKey = true
			r.sendHeaders = true
		}
		if r.sendHeaders {
			r.sendHeaders = false
			n := len(dst)
			dst = r.l.snapshotHeaders(dst)
			for _, h := range dst[n:] {
				r.sent[headerSlot(h)] = h
			}
		}
		head := r.l.head.Load()
		if r.cursor < head {
			if r.cursor < r.l.tail.Load() || r.lagging(head) {
				if err := r.skip(); err != nil {
					return dst, err
				}
				continue
			}
			for r.cursor < head && len(dst) < max {
				p := r.l.at(r.cursor)
				if p == nil { // overwritten while we looked
					break
				}
				r.cursor++
				if p.Header {
					// a header written after the GOP start is also in the
					// snapshot: never deliver the same one twice (players
					// take a repeated sequence header as new extradata)
					if r.sent[headerSlot(p)] == p {
						continue
					}
					r.sent[headerSlot(p)] = p
				}
				if r.needKey && !p.Header {
					if !r.l.isKey(p) {
						r.skipped.Add(1)
						continue
					}
					r.needKey = false
				}
				dst = append(dst, p)
			}
			if len(dst) > 0 {
				return dst, nil
			}
			if r.cursor < head {
				continue
			}
		}
		if len(dst) > 0 {
			return dst, nil
		}
		if r.l.closed.Load() && r.cursor >= r.l.head.Load() {
			return dst, ErrStreamEnded
		}
		if !wait {
			return dst, nil
		}
		r.pos.Store(r.cursor)
		select {
		case <-r.wake:
		case <-r.done:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// waitWindow sleeps until a coalescing window has passed since the last
// batch; packets written meanwhile are returned together.
func (r *Reader) waitWindow(ctx context.Context) error {
	now := time.Now()
	wait := r.coalesce - now.Sub(r.lastOut)
	if wait <= 0 || wait > r.coalesce {
		r.lastOut = now
		return nil
	}
	if r.timer == nil {
		r.timer = time.NewTimer(wait)
	} else {
		r.timer.Reset(wait)
	}
	select {
	case <-r.timer.C:
	case <-r.done:
	case <-ctx.Done():
		r.timer.Stop()
		return ctx.Err()
	}
	r.lastOut = time.Now()
	return nil
}

// lagging reports whether the reader is further behind the live edge, in
// media time, than the hub allows.
func (r *Reader) lagging(head uint64) bool {
	lag := time.Duration(r.s.hub.lag.Load())
	if lag <= 0 {
		return false
	}
	// Only a newer keyframe makes skipping worthwhile: a reader at the
	// start of a GOP longer than the lag limit is not behind.
	if k := r.l.lastKey.Load(); k == 0 || k-1 <= r.cursor {
		return false
	}
	p := r.l.at(r.cursor)
	if p == nil {
		return true
	}
	return r.l.lastT.Load()-p.Time > lag.Milliseconds()
}

func (r *Reader) skip() error {
	now := time.Now()
	keep := r.skipTimes[:0]
	for _, t := range r.skipTimes {
		if now.Sub(t) < r.s.hub.cfg.SlowReaderWindow {
			keep = append(keep, t)
		}
	}
	r.skipTimes = append(keep, now)
	r.s.skips.Add(1)
	if len(r.skipTimes) > r.s.hub.cfg.MaxSkips {
		r.s.dropped.Add(1)
		return ErrSlowReader
	}
	old := r.cursor
	r.cursor, r.needKey = r.l.startSeq()
	if r.cursor < old { // never go back: wait for the next key instead
		r.cursor, r.needKey = r.l.head.Load(), true
	}
	r.skipped.Add(r.cursor - old)
	r.sendHeaders = true
	return nil
}

// Close detaches the reader. It is idempotent.
func (r *Reader) Close() {
	r.once.Do(func() {
		close(r.done)
		r.s.removeReader(r)
	})
}
