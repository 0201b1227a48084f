package link

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// spliceStall is how long the old pull may deliver nothing while its
// replacement waits before the switch comes at once (a dead source), and
// spliceWait how long the replacement waits in all: a replacement that
// is behind the old pull (everything it brings was delivered) or whose
// keyframes the old pull does not reach would wait for ever, and keep
// the old pull (and its host's copy) alive.
const (
	spliceStall = time.Second
	spliceWait  = 4 * time.Second
)

// errSpliced ends the old pull's session once its replacement took over.
var errSpliced = errors.New("the replacement pull took the stream over")

// Splice hands a stream over from one Puller (the old) to its replacement
// (the new, PullConfig.Splice) without a lost or repeated frame, as
// spliceState decides: the new pull's packets wait, bounded, until the old
// pull has delivered up to the new one's first keyframe. The old Puller's
// packets go through it from HandOver on. One Splice serves one switch.
type Splice struct {
	mu       sync.Mutex
	st       *spliceState
	handed   bool  // the old side is handed over (HandOver, Route)
	taker    *sink // the new pull's session that waits
	oldEnded bool
	first    time.Time // the new pull's first packet
	lastOld  time.Time // the old pull's last packet
	// oldSeen: the old side delivered since it was handed over (or
	// before): a standby waits for that before the stall rule applies
	// (an active pull that is still connecting has not stalled)
	oldSeen bool
	// queue is a standby's released buffer from its first keyframe on,
	// paced out as the standby's packets come (two per packet): written
	// at once, a burst with a keyframe in it made the hub's lane drop
	// what a player had not read yet (its slack is 300 ms before the
	// newest keyframe) and the player skipped (TestClusterDualPath)
	queue []*unit.Packet
	done  atomic.Bool
	log   *slog.Logger
	now   func() time.Time
	stall time.Duration
	wait  time.Duration
}

// NewSplice returns a Splice with the default bounds; log gets the line
// that says how the switch came.
func NewSplice(log *slog.Logger) *Splice {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Splice{st: newSpliceState(spliceMaxSpan, spliceMaxBytes), log: log, now: time.Now, stall: spliceStall, wait: spliceWait}
}

// Bounds of a standby's buffer: what the active pull has not delivered
// yet. A standby started after the active pull starts at its host's live
// edge, ahead of the active one by the active pull's lag (3-5 s of media
// at the third center of TestClusterDualPath), and it has to keep that
// and the stall bound's worth on top.
const (
	standbyMaxSpan  = 8000     // ms
	standbyMaxBytes = 12 << 20 // bytes
)

// NewStandby returns a Splice for a standby pull (PullConfig.Splice): a
// second copy of the stream, from another host of it (a dual-path
// stream's other center), that runs beside the active pull (HandOver)
// and never goes to the hub while the active pull delivers. What the
// active pull has not delivered yet is held, bounded (the last
// standbyMaxSpan of media, at most standbyMaxBytes, trimmed at
// keyframes); when the active pull's session ends or it delivers nothing
// for the stall bound, the standby takes the stream over from the active
// pull's last frame per track: no frame lost while the buffer held it.
func NewStandby(log *slog.Logger) *Splice {
	sp := NewSplice(log)
	sp.st = newStandbyState(standbyMaxSpan, standbyMaxBytes)
	return sp
}

// StandbyStatus is what a standby's buffer holds.
type StandbyStatus struct {
	BufferedMs int64 `json:"buffered_ms"` // media the active pull has not delivered
	Packets    int   `json:"packets"`
	Bytes      int   `json:"bytes"`
	Trimmed    int   `json:"trimmed"` // packets dropped to the bounds
	TookOver   bool  `json:"took_over"`
	// Ready: the active pull has delivered up to the standby's first
	// frame, so a take-over now loses none (a standby starts at its
	// host's newest keyframe, which may be ahead of the active pull)
	Ready bool `json:"ready"`
}

// Standby returns the buffer's state.
func (sp *Splice) Standby() StandbyStatus {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return StandbyStatus{BufferedMs: sp.st.span(), Packets: len(sp.st.buf), Bytes: sp.st.bytes, Trimmed: sp.st.trimmed, TookOver: sp.st.done, Ready: sp.st.covers()}
}

// HandOver routes p's packets through sp: p is the pull sp's new pull
// replaces.
func (p *Puller) HandOver(sp *Splice) {
	sp.mu.Lock()
	sp.handed = true
	for k := range sp.st.heads {
		if h := p.heads[k].Load(); h != nil && sp.st.heads[k] == nil {
			sp.st.heads[k] = h
		}
	}
	if t := p.lastWrite.Load(); t != 0 {
		sp.lastOld, sp.oldSeen = time.Unix(0, t), true
	} else {
		sp.lastOld = sp.now()
	}
	sp.mu.Unlock()
	p.splice.Store(sp)
}

// Route returns the hub route that makes a stream's publisher the old
// side of sp (media.Stream.RoutePublisher): a center's own uplink of a
// stream that moved, replaced by a pull from the new host. Its codec
// headers came before: heads are the stream's (the hub's current ones).
func (sp *Splice) Route(heads []*unit.Packet) media.Route {
	sp.mu.Lock()
	sp.handed, sp.lastOld = true, sp.now()
	for _, h := range heads {
		if h != nil && h.Header {
			sp.st.heads[unit.HeaderSlot(h)] = h
		}
	}
	sp.mu.Unlock()
	return spliceRoute{sp}
}

// spliceRoute is the old side of a Splice in the hub (media.Route).
type spliceRoute struct{ sp *Splice }

func (r spliceRoute) Write(pk *unit.Packet, pass func(*unit.Packet) error) error {
	return r.sp.oldWrite(pk, pass)
}

func (r spliceRoute) Ended() { r.sp.oldEnd() }

// oldWrite writes the old side's pk with pass, unless the switch came.
func (sp *Splice) oldWrite(pk *unit.Packet, pass func(*unit.Packet) error) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.st.done {
		return errSpliced
	}
	sp.lastOld = sp.now()
	sp.oldSeen = sp.oldSeen || !pk.Header
	if sp.st.old(pk) {
		return pass(pk)
	}
	if err := sp.takeLocked(); err != nil {
		sp.log.Warn("pull switch failed", "err", err)
	}
	return errSpliced
}

// oldEnd says that the old pull's session ended: the new one takes over
// at once, at its next packet if it has none yet.
func (sp *Splice) oldEnd() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.oldEnded = true
	if sp.st.done || sp.taker == nil {
		return
	}
	sp.st.switchNow("the old pull ended")
	if err := sp.takeLocked(); err != nil {
		sp.log.Warn("pull switch failed", "err", err)
	}
}

// newWrite takes the new pull's pk while the switch has not come; it
// reports false once it has (s writes into the hub itself).
func (sp *Splice) newWrite(s *sink, pk *unit.Packet) (bool, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.st.done {
		return false, nil // it came: s writes into the hub itself
	}
	now := sp.now()
	if sp.taker != s {
		sp.taker, sp.first = s, now
	}
	reason := sp.st.new(pk)
	switch {
	case reason != "":
	case sp.oldEnded:
		reason = "the old pull ended"
	case sp.handed && now.Sub(sp.lastOld) > sp.stall && (sp.oldSeen || !sp.st.standby):
		reason = "the old pull delivered nothing for " + sp.stall.String()
	case now.Sub(sp.first) > sp.wait && !sp.st.standby:
		reason = "the new pull waited " + sp.wait.String() + " without the old pull reaching a keyframe of it"
	}
	if reason == "" {
		return true, nil
	}
	sp.st.switchNow(reason)
	return true, sp.takeLocked()
}

// paced takes a standby's packet pk after its take-over while its queue
// holds packets: pk joins the queue and the two oldest go out with emit.
// It reports false when the queue is empty (pk goes out as it comes).
func (sp *Splice) paced(pk *unit.Packet, emit func(*unit.Packet) error) (bool, error) {
	sp.mu.Lock()
	if len(sp.queue) == 0 {
		sp.mu.Unlock()
		return false, nil
	}
	sp.queue = append(sp.queue, pk)
	n := min(2, len(sp.queue))
	out := slices.Clone(sp.queue[:n])
	rest := copy(sp.queue, sp.queue[n:])
	clear(sp.queue[rest:])
	sp.queue = sp.queue[:rest]
	sp.mu.Unlock()
	for _, p := range out {
		if err := emit(p); err != nil {
			return true, err
		}
	}
	return true, nil
}

// queued says whether a standby's paced queue holds packets.
func (sp *Splice) queued() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return len(sp.queue) > 0
}

// flush writes what a standby's paced queue holds with emit (its
// session ends).
func (sp *Splice) flush(emit func(*unit.Packet) error) {
	sp.mu.Lock()
	q := sp.queue
	sp.queue = nil
	sp.mu.Unlock()
	for _, p := range q {
		if emit(p) != nil {
			return
		}
	}
}

// newEnd says that the new pull's session s ended before the switch: what
// it buffered goes, and the old pull goes on alone.
func (sp *Splice) newEnd(s *sink) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.st.done || sp.taker != s {
		return
	}
	sp.taker = nil
	sp.st.drop()
}

// takeLocked makes the waiting session take the stream over with the
// buffer, and logs how the switch came.
func (sp *Splice) takeLocked() error {
	defer sp.done.Store(true)
	pks := sp.st.release()
	s := sp.taker
	waited := time.Duration(0)
	if s != nil {
		waited = sp.now().Sub(sp.first).Round(time.Millisecond)
	}
	if sp.st.standby {
		// where the active pull's video ended and the buffer's begins:
		// a gap between them is what the players miss
		first := int64(-1)
		for _, pk := range pks {
			if spliceTrack(pk) == spVideo {
				first = pk.Time
				break
			}
		}
		sp.log.Info("standby pull takes over", "reason", sp.st.reason, "buffered", len(pks), "trimmed", sp.st.trimmed,
			"active_last_video_ms", sp.st.last[spVideo], "buffer_first_video_ms", first)
	} else if sp.st.reason == "" {
		sp.log.Info("pull spliced: the replacement takes over at its keyframe, after the old pull's last frame before it",
			"at_ms", sp.st.at, "waited", waited.String(), "buffered", len(pks))
	} else {
		sp.log.Info("pull switched at once", "reason", sp.st.reason, "waited", waited.String(), "buffered", len(pks))
	}
	if s == nil {
		return nil
	}
	if sp.st.standby {
		// what precedes its first keyframe goes at once (the players
		// wait for it), the rest paced
		for n, pk := range pks {
			if n > 0 && pk.Keyframe && !pk.Header {
				sp.queue = append(sp.queue, pks[n:]...)
				pks = pks[:n]
				break
			}
		}
	}
	for _, pk := range pks {
		if err := s.writeHub(pk); err != nil {
			return err
		}
	}
	return s.publish() // with nothing buffered
}
