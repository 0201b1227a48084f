package media

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Stream is one live stream (app/name). It outlives a publisher by the
// reconnect grace so readers stay connected while the publisher returns.
type Stream struct {
	hub     *Hub
	key     string
	created time.Time
	lanes   [numFormats]*lane

	mu       sync.Mutex
	pub      *Publisher
	sessions int
	grace    *time.Timer
	ended    bool
	endNoted bool // StreamEnded published; guarded by the hub's mu
	readers  map[*Reader]struct{}
	remux    context.CancelFunc // running FLV->TS remuxer
	// remuxDone is closed when that remuxer's goroutine has returned
	remuxDone chan struct{}
	native    Format

	// wmu serializes writers: a publisher being taken over may still be
	// inside Write when its successor starts. It guards the timeline.
	wmu     sync.Mutex
	offset  int64
	lastOut int64
	started bool
	// lastMedia is the last output time of video [0] and audio [1]
	// frames (0 = none yet)
	lastMedia [2]int64
	// cont: this session continues the last one's timeline (Continues)
	cont bool
	// overlap[track] (video, audio, TS lane): a continuing session has
	// not yet written a packet of it newer than the last session's; until
	// then what it repeats is dropped
	overlap [3]bool
	lastTS  int64 // the last TS-lane media packet's time
	// The FLV lane of a TS-native stream is filled only while it has
	// readers (lazyFLV: the hub can rebuild it from the TS lane); flvOn
	// says it is, flvSkip holds the times up to which the rebuild wrote
	// video [0] and audio [1] (the publisher's own copies are dropped;
	// noSkip: none, since a session's first frame is at time 0).
	lazyFLV bool
	flvOn   bool
	flvSkip [2]int64
	// flvWanted: !lazyFLV || flvOn, for the publisher's demuxer, which
	// builds FLV bodies only while they are wanted (Publisher.WantsFLV)
	flvWanted atomic.Bool

	Meter   Meter
	codecs  atomic.Pointer[unit.CodecInfo]
	skips   atomic.Uint64
	dropped atomic.Uint64
	// ccErrors: MPEG-TS continuity errors in the publishers' input
	ccErrors atomic.Uint64
	sentOld  atomic.Uint64 // bytes sent to readers that have left
}

// BytesOut returns the bytes sent to all readers, past and present.
func (s *Stream) BytesOut() uint64 {
	n := s.sentOld.Load()
	s.mu.Lock()
	for r := range s.readers {
		n += r.BytesOut.Load()
	}
	s.mu.Unlock()
	return n
}

func newStream(h *Hub, key string) *Stream {
	s := &Stream{hub: h, key: key, created: time.Now(), readers: map[*Reader]struct{}{}}
	for i := range s.lanes {
		s.lanes[i] = newLane(h.cfg.RingPackets, h.cfg.RingBytes, h.cfg.RingSlack, h.cfg.RingSlackTime.Milliseconds())
	}
	s.Meter.init(h.cfg.Clock)
	return s
}

// Key returns app/name.
func (s *Stream) Key() string { return s.key }

// Created returns when the stream first went live.
func (s *Stream) Created() time.Time { return s.created }

// Codecs returns what the stream carries, as far as known.
func (s *Stream) Codecs() unit.CodecInfo {
	if c := s.codecs.Load(); c != nil {
		return *c
	}
	return unit.CodecInfo{}
}

// Skips returns how many times readers skipped ahead, and how many were
// disconnected for staying behind.
func (s *Stream) Skips() (skips, dropped uint64) { return s.skips.Load(), s.dropped.Load() }

// Publisher returns the current publisher's description, if one is attached.
func (s *Stream) Publisher() (PublisherInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub == nil {
		return PublisherInfo{}, false
	}
	return s.pub.info, true
}

// Route is where a publisher's packets go instead of the hub once
// RoutePublisher set it: a splice that hands the stream over to a
// replacement without a gap (link.Splice). Write gets each packet with
// pass, which writes it into the hub; Ended says the publisher closed
// (called by Close, on the publisher's goroutine).
type Route interface {
	Write(pkt *unit.Packet, pass func(*unit.Packet) error) error
	Ended()
}

// RoutePublisher sends the current publisher's packets through the route
// mk makes from the stream's current codec headers, from now on, if one
// is attached and protocol says which; it reports whether it did.
// (mk runs without the stream's lock: a route may publish into it.)
func (s *Stream) RoutePublisher(protocol string, mk func(heads []*unit.Packet) Route) bool {
	s.mu.Lock()
	p := s.pub
	if p == nil || p.info.Protocol != protocol {
		s.mu.Unlock()
		return false
	}
	var heads []*unit.Packet
	for _, l := range s.lanes {
		heads = l.snapshotHeaders(heads)
	}
	s.mu.Unlock()
	r := mk(heads)
	p.route.Store(&r)
	if p.closed.Load() {
		// it closed meanwhile: its Close may have missed the route
		if r := p.route.Swap(nil); r != nil {
			(*r).Ended()
		}
	}
	return true
}

// Readers returns the attached readers' descriptions.
func (s *Stream) Readers() []ReaderInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ReaderInfo, 0, len(s.readers))
	for r := range s.readers {
		if r.info.Protocol != "" {
			out = append(out, r.info)
		}
	}
	return out
}

// ReaderCount returns how many external readers are attached.
func (s *Stream) ReaderCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for r := range s.readers {
		if r.info.Protocol != "" {
			n++
		}
	}
	return n
}

// attach makes info the stream's publisher; nil when the stream ended
// meanwhile (the caller starts a new one).
func (s *Stream) attach(info PublisherInfo) *Publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil
	}
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	s.native = info.Native
	s.wmu.Lock()
	s.sessions++
	p := &Publisher{s: s, info: info, session: s.sessions}
	s.started = false
	s.cont = info.Continues && s.sessions > 1
	s.overlap = [3]bool{s.cont, s.cont, s.cont}
	s.lazyFLV = info.Native == FormatTS
	s.flvOn = s.flvReadersLocked() > 0
	s.flvWanted.Store(!s.lazyFLV || s.flvOn)
	s.flvSkip = [2]int64{noSkip, noSkip}
	if s.lazyFLV && !s.flvOn {
		s.lanes[FormatFLV].clear()
	}
	s.wmu.Unlock()
	s.pub = p
	if !s.cont {
		s.newEpoch()
	}
	if s.remux != nil && info.Native == FormatTS {
		s.remux()
		s.remux = nil
	}
	return p
}

func (s *Stream) subscribe(opt SubscribeOptions, maxReaders int) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return nil, ErrNoStream
	}
	if maxReaders > 0 && opt.Info.Protocol != "" {
		n := 0
		for r := range s.readers {
			if r.info.Protocol != "" {
				n++
			}
		}
		if n >= maxReaders {
			return nil, fmt.Errorf("%s: %w (limit %d)", s.key, ErrTooManyReaders, maxReaders)
		}
	}
	if opt.Format == FormatFLV {
		s.wantFLV()
	}
	l := s.lanes[opt.Format]
	r := &Reader{
		s: s, l: l, fmt: opt.Format, info: opt.Info,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		sendHeaders: true, epoch: l.epoch.Load(), coalesce: opt.Coalesce,
	}
	s.readers[r] = struct{}{}
	// attached at position 0 before it has a cursor: no packet it may
	// start at is released meanwhile for every other reader being past it
	l.addReader(r)
	r.cursor, r.needKey = l.startSeq()
	r.pos.Store(r.cursor)
	if opt.Format != s.native && s.remux == nil && opt.Format == FormatTS {
		s.startRemuxLocked()
	}
	return r, nil
}

func (s *Stream) removeReader(r *Reader) {
	n := r.l.removeReader(r)
	s.mu.Lock()
	delete(s.readers, r)
	s.sentOld.Add(r.BytesOut.Load())
	if n == 0 && r.fmt == FormatTS && s.remux != nil && r.info.Protocol != "" {
		s.remux()
		s.remux = nil
	}
	if r.fmt == FormatFLV && s.flvReadersLocked() == 0 {
		s.wmu.Lock()
		if s.lazyFLV && s.flvOn {
			s.flvOn = false
			s.flvWanted.Store(false)
			s.flvSkip = [2]int64{noSkip, noSkip}
			s.lanes[FormatFLV].clear()
		}
		s.wmu.Unlock()
	}
	s.mu.Unlock()
}

// flvReadersLocked counts the readers of the FLV lane; s.mu is held.
func (s *Stream) flvReadersLocked() int {
	n := 0
	for r := range s.readers {
		if r.fmt == FormatFLV {
			n++
		}
	}
	return n
}

// wantFLV fills a lazy FLV lane from now on, starting from the TS lane's
// GOP; s.mu is held.
func (s *Stream) wantFLV() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.lazyFLV || s.flvOn {
		return
	}
	s.flvOn = true
	s.flvWanted.Store(true)
	s.backfillFLV()
}

// noSkip is a flvSkip that drops nothing.
const noSkip = math.MinInt64

// backfillFLV writes the FLV packets of the TS lane's GOP (the newest
// keyframe on) into the FLV lane, on the publisher's timeline, so a first
// FLV reader starts at once as with any GOP cache. The publisher's own
// FLV packets of what the TS lane holds were dropped while the lane was
// off, and those it writes from now on continue after the rebuild: the
// demuxer emits an access unit's TS group before its FLV packets, and a
// copy of the last rebuilt one is dropped in Write (flvSkip). Audio the
// publisher finished after the TS lane's newest group (at most one video
// frame's worth) is missing once. s.wmu is held: nothing is written
// meanwhile.
func (s *Stream) backfillFLV() {
	ts, fl := s.lanes[FormatTS], s.lanes[FormatFLV]
	k := ts.lastKey.Load()
	if k == 0 || k-1 < ts.tail.Load() || !s.started {
		return // no GOP kept, or no FLV timeline yet: start at the next keyframe
	}
	first := ts.at(k - 1)
	if first == nil {
		return
	}
	rm := mpegts.NewFLVRemuxer()
	var (
		out    []*unit.Packet
		own    int64
		synced bool
	)
	emit := func(p *unit.Packet) {
		switch {
		case p.Kind == unit.KindTS:
			if !synced && !p.Header {
				synced, own = true, p.Time
			}
		case !p.Header:
			out = append(out, p)
		}
	}
	for _, h := range ts.snapshotHeaders(nil) {
		if h.Kind == unit.KindTS {
			_ = rm.Remux(h, emit)
		}
	}
	for seq, head := k-1, ts.head.Load(); seq < head; seq++ {
		if p := ts.at(seq); p != nil {
			_ = rm.Remux(p, emit)
		}
	}
	_ = rm.Flush(emit)
	if !synced {
		return
	}
	// the rebuild's clock starts afresh: map it onto the TS lane's, then
	// onto the FLV lane's (the session's offset)
	d := first.Time - own + s.offset
	for _, p := range out {
		p.Time += d
		if i := mediaTrack(p); i >= 0 {
			s.flvSkip[i] = max(s.flvSkip[i], p.Time)
		}
		fl.write(p)
	}
}

// startRemuxLocked feeds the TS lane from the FLV lane while TS readers
// exist.
func (s *Stream) startRemuxLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	s.remux = cancel
	in := &Reader{
		s: s, l: s.lanes[FormatFLV], fmt: FormatFLV,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		sendHeaders: true, epoch: s.lanes[FormatFLV].epoch.Load(),
	}
	s.readers[in] = struct{}{}
	in.l.addReader(in)
	in.cursor, in.needKey = in.l.startSeq()
	in.pos.Store(in.cursor)
	mux := mpegts.NewMuxer()
	out := s.lanes[FormatTS]
	done := make(chan struct{})
	s.remuxDone = done
	go func() {
		defer close(done)
		defer in.Close()
		buf := make([]*unit.Packet, 0, 64)
		emit := func(p *unit.Packet) { out.write(p) }
		for {
			pkts, err := in.Next(ctx, buf)
			for _, p := range pkts {
				if err := mux.Remux(p, emit); err != nil {
					s.hub.log.Warn("remux to mpegts", "stream", s.key, "err", err)
				}
			}
			if err != nil {
				return
			}
		}
	}()
}

// end closes the stream for good.
func (s *Stream) end(reason error) {
	s.mu.Lock()
	finish := s.endLocked(reason)
	s.mu.Unlock()
	finish()
}

// endLocked marks the stream ended while s.mu is held, so no publisher
// can attach between the decision to end and the end; the returned func
// (called without the lock) closes the lanes and unregisters the stream.
func (s *Stream) endLocked(reason error) func() {
	if s.ended {
		return func() {}
	}
	s.ended = true
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	pub := s.pub
	s.pub = nil
	if pub != nil {
		s.hub.publishers.Add(-1)
	}
	// a running remuxer is not stopped at once: it may be behind the FLV
	// lane, and its TS readers (an SRT reader, a center's pull) would
	// miss the stream's last frames
	stopRemux, remuxDone := s.remux, s.remuxDone
	s.remux = nil
	return func() {
		if pub != nil {
			pub.kicked.CompareAndSwap(nil, &reason)
		}
		// unlisted first: a reader told the stream ended finds it gone
		s.hub.removeStream(s, reason)
		for f, l := range s.lanes {
			if stopRemux == nil || Format(f) != FormatTS {
				l.close()
			}
		}
		if stopRemux != nil {
			// the remuxer reads the closed FLV lane to its end, then
			// returns; the TS lane ends after its last packet
			t := time.NewTimer(remuxDrain)
			select {
			case <-remuxDone:
			case <-t.C:
			}
			t.Stop()
			stopRemux()
			s.lanes[FormatTS].close()
		}
	}
}

// remuxDrain bounds how long the end of a stream waits for its FLV->TS
// remuxer to catch up with the FLV lane (it only muxes: milliseconds).
const remuxDrain = time.Second

// trackTS indexes the TS lane in Stream.overlap, after mediaTrack's.
const trackTS = 2

// mediaTrack is 0 for a video frame, 1 for an audio frame and -1 for
// anything else (headers, metadata).
func mediaTrack(p *unit.Packet) int {
	switch {
	case p.Header:
		return -1
	case p.Kind == unit.KindVideo:
		return 0
	case p.Kind == unit.KindAudio:
		return 1
	}
	return -1
}

// newEpoch makes readers resume at the next keyframe with the headers
// (a new publisher session that does not continue the last one).
func (s *Stream) newEpoch() {
	for _, l := range s.lanes {
		l.epoch.Add(1)
	}
}

// maxContinueStep bounds how far a continuing session's first packet may
// be from the last output before it is rebased like any new session.
const maxContinueStep = 30000 // ms

// maxClockStepBack is how far a publisher's timestamps may go back within
// a session (audio behind video in the interleave) before Write takes it
// for a new clock and rebases the rest of the session after the last
// output.
const maxClockStepBack = 3000 // ms

// Publisher is the single writer of a stream.
type Publisher struct {
	s       *Stream
	info    PublisherInfo
	session int
	kicked  atomic.Pointer[error]
	closed  atomic.Bool
	// batch: Write leaves waking the readers to Flush; pending has a
	// bit per lane written since (the publisher's goroutine's own)
	batch   bool
	pending uint8
	// route: the packets go there (RoutePublisher)
	route atomic.Pointer[Route]
}

// Batch makes Write leave waking the stream's readers to Flush. A
// publisher that reads several messages from one input buffer calls
// Flush before it waits for more input, so the packets of one read reach
// each player with one wake and one write, and none waits for input that
// has not arrived. Only the publisher's goroutine calls Batch, Write and
// Flush.
func (p *Publisher) Batch() { p.batch = true }

// Flush wakes the readers of what Write put since the last Flush.
func (p *Publisher) Flush() {
	for f := range numFormats {
		if p.pending&(1<<f) != 0 {
			p.s.lanes[f].wake()
		}
	}
	p.pending = 0
}

// Stream returns the publisher's stream.
func (p *Publisher) Stream() *Stream { return p.s }

// WantsFLV reports whether FLV packets written now can reach a reader.
// A TS-native publisher's FLV lane is filled only while it has readers;
// while it has none, a demuxer may write its FLV frames with a phantom
// payload (unit.Phantom: the time, flags and size the stream's timeline
// and meter need, no body). Asked after the access unit's TS group was
// written, a false answer means that a reader subscribing from now on
// gets this access unit from the rebuild of the TS lane's GOP. A routed
// publisher (RoutePublisher) always wants them: its route may hold them.
func (p *Publisher) WantsFLV() bool {
	return p.s.flvWanted.Load() || p.route.Load() != nil
}

// Write publishes one packet to the lane of its format. p must not be
// modified afterwards. Write never blocks on readers. It returns an error
// when the publisher must stop: taken over, over the bitrate limit, or the
// server is closing.
func (p *Publisher) Write(pkt *unit.Packet) error {
	if r := p.route.Load(); r != nil {
		return (*r).Write(pkt, p.write)
	}
	return p.write(pkt)
}

func (p *Publisher) write(pkt *unit.Packet) error {
	s := p.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if e := p.kicked.Load(); e != nil {
		return *e
	}
	if p.closed.Load() {
		return ErrPublisherClosed
	}
	f := FormatFLV
	if pkt.Kind == unit.KindTS {
		f = FormatTS
		if !pkt.Header {
			if s.cont && s.overlap[trackTS] {
				if pkt.Time <= s.lastTS {
					return nil // the previous session delivered it
				}
				// past the overlap: a time repeated later in the
				// session (a group without a new DTS) is this
				// session's own packet
				s.overlap[trackTS] = false
			}
			s.lastTS = max(s.lastTS, pkt.Time)
		}
	} else {
		// one continuous, monotonic timeline across publisher sessions
		if !s.started {
			s.started = true
			if d := pkt.Time + s.offset - s.lastOut; s.cont && (s.lastOut == 0 || d < -maxContinueStep || d > maxContinueStep) {
				s.cont = false // not the same clock after all
				s.newEpoch()
			}
			if !s.cont && (s.lastOut != 0 || s.sessions > 1) {
				s.offset = s.lastOut + 1 - pkt.Time
			}
		}
		if pkt.Time+s.offset < s.lastOut-maxClockStepBack {
			// the source's clock jumped back within one session: the
			// stream was taken over upstream (another edge's encoder
			// behind a center whose TS passes to a pull untouched);
			// rebased like a new session, so the timeline stays monotonic
			s.offset = s.lastOut + 1 - pkt.Time
		}
		pkt.Time += s.offset
		if i := mediaTrack(pkt); i >= 0 {
			// a rebase sets the offset from the first packet of one
			// track; a track whose first frame comes before it in the
			// new session would land at or before its own last frame
			// (the duplicate DTS at every pull switch)
			if last := s.lastMedia[i]; last != 0 && pkt.Time <= last {
				if s.cont && s.overlap[i] {
					return nil // the previous session delivered it
				}
				pkt.Time = last + 1
			}
			s.overlap[i] = false
			s.lastMedia[i] = pkt.Time
		}
		if pkt.Time > s.lastOut {
			s.lastOut = pkt.Time
		}
		if pkt.Header {
			if ci, ok := unit.ParseHeader(pkt, s.Codecs()); ok {
				s.codecs.Store(&ci)
			}
		}
		s.Meter.add(pkt)
		if max := s.hub.maxBitrate(); max > 0 {
			if br := s.Meter.recentBitrate(s.hub.cfg.BitrateWindow); br > max {
				err := fmt.Errorf("%w: %d bit/s over %s, limit %d", ErrBitrate, br, s.hub.cfg.BitrateWindow, max)
				p.kicked.CompareAndSwap(nil, &err)
				return err
			}
		}
	}
	if f == FormatFLV && unit.IsPhantom(pkt.Payload) {
		// counted above; built only when wanted (WantsFLV), so the FLV
		// lane is off, or the rebuild wrote this frame (flvSkip)
		return nil
	}
	if f == FormatFLV && s.lazyFLV && !pkt.Header {
		if !s.flvOn {
			return nil // nobody reads FLV: it is rebuilt from the TS lane when somebody does
		}
		if i := mediaTrack(pkt); i >= 0 && pkt.Time <= s.flvSkip[i] {
			return nil // written by the rebuild
		}
	}
	if p.batch {
		s.lanes[f].put(pkt)
		p.pending |= 1 << f
	} else {
		s.lanes[f].write(pkt)
	}
	return nil
}

// Close detaches the publisher. Readers stay for the reconnect grace, then
// the stream ends.
func (p *Publisher) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.detach(nil)
	if r := p.route.Swap(nil); r != nil {
		(*r).Ended()
	}
}

// detach clears the stream's publisher if it is still p and says whether
// it did; only the call that detaches counts the publisher out.
func (p *Publisher) detach(reason error) bool {
	s := p.s
	if reason != nil {
		p.kicked.CompareAndSwap(nil, &reason)
	}

	s.mu.Lock()
	if s.pub != p {
		s.mu.Unlock()
		return false
	}
	s.pub = nil
	s.hub.publishers.Add(-1)
	if errors.Is(reason, ErrTakenOver) {
		s.mu.Unlock()
		return true // the hub attaches the new publisher at once
	}
	grace := s.hub.graceTime()
	if grace <= 0 {
		finish := s.endLocked(nil)
		s.mu.Unlock()
		finish()
		return true
	}
	s.grace = time.AfterFunc(grace, func() {
		s.mu.Lock()
		finish := func() {}
		if s.pub == nil {
			finish = s.endLocked(nil)
		}
		s.mu.Unlock()
		finish()
	})
	s.mu.Unlock()
	return true
}

func (h *Hub) graceTime() time.Duration { return time.Duration(h.grace.Load()) }

func (h *Hub) maxBitrate() int64 { return h.bitrate.Load() }

// KickPublisher makes the current publisher's next Write fail with reason,
// so its endpoint closes the connection and logs why; readers stay for the
// reconnect grace. It reports whether a publisher was attached.
func (s *Stream) KickPublisher(reason error) bool {
	s.mu.Lock()
	p := s.pub
	s.mu.Unlock()
	if p == nil {
		return false
	}
	p.kicked.CompareAndSwap(nil, &reason)
	return true
}
