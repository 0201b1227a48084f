package media

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/relaymesh/relaymesh/media/unit"
)

// fanout is a lane's writer to its players' sockets. One goroutine, woken
// once per packet the lane takes, walks the players whose sockets took
// everything so far and writes each one's new packets with one
// non-blocking writev; no goroutine is woken per player and no timer is
// set per packet. A player whose socket is full is parked: the rest of
// its batch goes to a goroutine of its own that waits until the socket
// takes it (bounded by the write timeout) and then rejoins, so a stalled
// player never delays the others. The slow-reader rules are the Reader's:
// a parked player that rejoins far behind skips to a keyframe, and one
// that keeps doing so is disconnected. The goroutine runs only while the
// lane has players; its scratch is taken from a pool for each round of
// writes, so a thousand streams keep a handful, not one each.
type fanout struct {
	wake chan struct{}

	mu      sync.Mutex
	sinks   []*Sink
	running bool
	players int // Sinks given this writer and not finished (parked ones too)

	// the writer goroutine's own: the scratch of the round in progress
	*fanScratch
}

// fanScratch is what a round of a fan-out writer works in: the players
// of the round, the packets of one player's batch, its iovecs and
// framing. It holds no packet between rounds.
type fanScratch struct {
	round []*Sink
	pkts  []*unit.Packet
	bufs  net.Buffers
	hdr   []byte
	iov   []syscall.Iovec
}

var fanScratchPool = sync.Pool{New: func() any {
	return &fanScratch{
		pkts: make([]*unit.Packet, 0, sendBatch),
		bufs: make(net.Buffers, 0, sendVecs),
		hdr:  make([]byte, 0, sendBatch*unit.RTMPHeaderScratch),
	}
}}

// fanout returns a fan-out writer of the lane for a new player, making
// the writers on first use: one per core (GOMAXPROCS), so a large
// audience is written from every core, as a goroutine per player did, but
// by a handful of goroutines. The first writer with fewer than
// fanoutFill players is chosen (a small audience wakes one goroutine per
// packet), else the one with the fewest.
func (l *lane) fanout() *fanout {
	fs := l.fan.Load()
	if fs == nil {
		l.mu.Lock()
		if fs = l.fan.Load(); fs == nil {
			n := max(1, runtime.GOMAXPROCS(0))
			all := make([]*fanout, n)
			for i := range all {
				all[i] = &fanout{wake: make(chan struct{}, 1)}
			}
			fs = &all
			l.fan.Store(fs)
		}
		l.mu.Unlock()
	}
	best, least := (*fs)[0], -1
	for _, f := range *fs {
		f.mu.Lock()
		n := f.players
		f.mu.Unlock()
		if n < fanoutFill {
			return f
		}
		if least < 0 || n < least {
			best, least = f, n
		}
	}
	return best
}

// fanoutFill is how many players a lane's first writers take before the
// next one is used.
const fanoutFill = 64

func (f *fanout) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// add makes k one of the players the writer walks, starting the writer
// if it is not running.
func (f *fanout) add(k *Sink) {
	f.mu.Lock()
	f.sinks = append(f.sinks, k)
	if !f.running {
		f.running = true
		go f.run()
	}
	f.mu.Unlock()
	f.poke()
}

// drop removes k; only the writer goroutine calls it, for a player it
// parks or finishes.
func (f *fanout) drop(k *Sink) {
	f.mu.Lock()
	for i, o := range f.sinks {
		if o == k {
			last := len(f.sinks) - 1
			f.sinks[i] = f.sinks[last]
			f.sinks[last] = nil
			f.sinks = f.sinks[:last]
			break
		}
	}
	f.mu.Unlock()
}

func (f *fanout) run() {
	for range f.wake {
		f.fanScratch = fanScratchPool.Get().(*fanScratch)
		f.mu.Lock()
		f.round = append(f.round[:0], f.sinks...)
		f.mu.Unlock()
		for _, k := range f.round {
			f.flush(k)
		}
		// keep no packet or player alive in the pool
		clear(f.round)
		clear(f.pkts[:cap(f.pkts)])
		clear(f.bufs[:cap(f.bufs)])
		clear(f.iov[:cap(f.iov)])
		f.round, f.pkts, f.bufs, f.hdr, f.iov = f.round[:0], f.pkts[:0], f.bufs[:0], f.hdr[:0], f.iov[:0]
		fanScratchPool.Put(f.fanScratch)
		f.fanScratch = nil
		f.mu.Lock()
		if len(f.sinks) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
}

// flush writes what k's reader has ready until it has no more, its
// socket is full (k is parked) or it ends.
//
// It has no more only when a poll returns nothing: a poll that hands out
// packets does not say the lane ended (the end comes with the next poll),
// and no wake follows the one of the end. A short batch is not enough:
// the end's wake finding a player that has every packet but a new
// publisher session's headers (a reconnect bumps the epoch without a
// wake) got the headers, and the player was never ended.
func (f *fanout) flush(k *Sink) {
	if k.stop.Load() {
		f.drop(k)
		k.finish(context.Canceled)
		return
	}
	for {
		pkts, nerr := k.rd.poll(f.pkts)
		if len(pkts) > 0 {
			f.bufs, f.hdr = f.bufs[:0], f.hdr[:0]
			for _, p := range pkts {
				f.bufs, f.hdr = k.s.Wire(p, f.bufs, f.hdr)
			}
			n, full, err := f.write(k)
			k.rd.BytesOut.Add(uint64(n))
			switch {
			case err != nil:
				f.drop(k)
				k.finish(&WriteError{err})
				return
			case full:
				k.keep(f.bufs, n, f.hdr)
				k.pendErr = nerr
				f.drop(k)
				go k.resume()
				return
			}
		}
		if nerr != nil {
			f.drop(k)
			k.finish(nerr)
			return
		}
		if len(pkts) == 0 {
			return
		}
	}
}

// write sends f.bufs to k's socket without waiting: it returns the bytes
// written and whether the socket (or the connection's write lock) was
// busy before all of them went.
func (f *fanout) write(k *Sink) (n int, full bool, err error) {
	if k.lock != nil {
		if !k.lock.TryLock() {
			return 0, true, nil
		}
		defer k.lock.Unlock()
	}
	bufs := f.bufs
	for len(bufs) > 0 {
		f.iov = f.iov[:0]
		want := 0
		for len(bufs) > 0 && len(f.iov) < maxIOV {
			if b := bufs[0]; len(b) > 0 {
				f.iov = append(f.iov, iovec(b))
				want += len(b)
			}
			bufs = bufs[1:]
		}
		k.iov, k.wn, k.werr = f.iov, 0, nil
		err := k.rc.Write(k.writeFn)
		k.iov = nil
		n += k.wn
		switch {
		case err != nil: // closed, or a deadline Stop set
			return n, false, err
		case errors.Is(k.werr, syscall.EAGAIN):
			return n, true, nil
		case k.werr != nil:
			return n, false, k.werr
		case k.wn < want:
			return n, true, nil
		}
	}
	return n, false, nil
}

// tryLocker is a Sender.Lock the writer can try without waiting
// (*sync.Mutex).
type tryLocker interface {
	TryLock() bool
	Unlock()
}

// Sink is one player written by its lane's fan-out writer (Sender.Start).
type Sink struct {
	s     *Sender
	rd    *Reader
	f     *fanout
	rc    syscall.RawConn
	lock  tryLocker
	onEnd func()

	// writeFn is k.writev, made once: RawConn.Write's callback, with its
	// input and results in the Sink so that no write allocates
	writeFn func(fd uintptr) bool
	iov     []syscall.Iovec
	wn      int
	werr    error

	// a parked player's rest of a batch, its framing copied out of the
	// writer's scratch, and the reader's error that came with it
	pend    net.Buffers
	pendHdr []byte
	pendErr error

	stop atomic.Bool
	done chan struct{}
	err  error // set before done is closed
}

func (k *Sink) writev(fd uintptr) bool {
	k.wn, k.werr = writev(fd, k.iov)
	return true // never park in the poller: a full socket is parked by us
}

// keep saves what of bufs the socket did not take after n bytes, copying
// the framing that lives in the writer's scratch hdr (the payloads are
// the packets' own and immutable).
func (k *Sink) keep(bufs net.Buffers, n int, hdr []byte) {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs[0] = bufs[0][n:]
	}
	size := 0
	for _, b := range bufs {
		if within(b, hdr) {
			size += len(b)
		}
	}
	k.pendHdr = make([]byte, 0, size)
	k.pend = make(net.Buffers, 0, len(bufs))
	for _, b := range bufs {
		if within(b, hdr) {
			at := len(k.pendHdr)
			k.pendHdr = append(k.pendHdr, b...)
			b = k.pendHdr[at:]
		}
		k.pend = append(k.pend, b)
	}
}

// within reports whether b lies in hdr's array.
func within(b, hdr []byte) bool {
	if len(b) == 0 || cap(hdr) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(hdr[:cap(hdr)])))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= base && p < base+uintptr(cap(hdr))
}

// resume is a parked player's goroutine: it writes the rest of the batch,
// waiting for the socket (at most WriteTimeout without progress), then
// hands the player back to the writer.
func (k *Sink) resume() {
	err := k.writePending()
	clear(k.pend)
	k.pend, k.pendHdr = nil, nil
	switch {
	case err != nil:
		k.finish(&WriteError{err})
	case k.pendErr != nil:
		k.finish(k.pendErr)
	case k.stop.Load():
		k.finish(context.Canceled)
	default:
		k.f.add(k)
	}
}

func (k *Sink) writePending() error {
	if k.s.Lock != nil {
		k.s.Lock.Lock()
		defer k.s.Lock.Unlock()
	}
	c := k.s.Conn
	c.SetWriteDeadline(time.Now().Add(k.s.WriteTimeout))
	n, err := k.pend.WriteTo(c)
	k.rd.BytesOut.Add(uint64(n))
	if err != nil {
		return err
	}
	// the writer's non-blocking writes must not meet an old deadline
	return c.SetWriteDeadline(time.Time{})
}

// finish ends k: its owner (the writer, or its parked goroutine) calls it
// once.
func (k *Sink) finish(err error) {
	if k.stop.Load() {
		err = context.Canceled
	}
	k.err = err
	k.f.mu.Lock()
	k.f.players--
	k.f.mu.Unlock()
	close(k.done)
	if k.onEnd != nil {
		k.onEnd()
	}
}

// Done is closed when the player ended; Err then says why.
func (k *Sink) Done() <-chan struct{} { return k.done }

// Err returns why the player ended, as Sender.Send would: a *WriteError,
// an error of the reader (ErrStreamEnded, ErrSlowReader) or
// context.Canceled after Stop. Call it after Done is closed.
func (k *Sink) Err() error {
	<-k.done
	return k.err
}

// Stop detaches the player and waits until the writer is done with it
// (a write in progress to a full socket is cut short); it returns Err.
func (k *Sink) Stop() error {
	k.stop.Store(true)
	k.s.Conn.SetWriteDeadline(time.Unix(1, 0))
	k.f.poke()
	return k.Err()
}

// End returns why the player ended if it did, else stops it (Stop): for
// the player's connection goroutine once the client left or the writer
// cut its wait short.
func (k *Sink) End() error {
	select {
	case <-k.done:
		return k.err
	default:
		return k.Stop()
	}
}

// Start has rd's lane's fan-out writer send to s.Conn from now on and
// returns the player's Sink, or nil when the connection has no
// non-blocking writev (not a socket, not Linux) or rd coalesces; then
// Send's loop is used. onEnd, if set, is called once when the player ends,
// from the writer: it must not block. rd must not be used by the caller
// until Done is closed.
func (s *Sender) Start(rd *Reader, onEnd func()) *Sink {
	if !fanoutSupported || rd.coalesce > 0 {
		return nil
	}
	sc, ok := s.Conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	k := &Sink{s: s, rd: rd, rc: rc, onEnd: onEnd, done: make(chan struct{}), f: rd.l.fanout()}
	if s.Lock != nil {
		l, ok := s.Lock.(tryLocker)
		if !ok {
			return nil
		}
		k.lock = l
	}
	k.writeFn = k.writev
	k.f.mu.Lock()
	k.f.players++
	k.f.mu.Unlock()
	rd.l.unwake(rd.wake) // the writer polls it
	s.Conn.SetWriteDeadline(time.Time{})
	k.f.add(k)
	return k
}
