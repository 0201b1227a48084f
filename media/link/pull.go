package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// PullConfig configures a Puller.
type PullConfig struct {
	Key                    string // publish into the hub under this key
	Next                   func(attempt int, lastErr error) (Target, error)
	MinBackoff, MaxBackoff time.Duration
	ReadTimeout            time.Duration // source silence before reconnect (default 5s)
	IdleStop               time.Duration // on-demand: stop when the stream had no readers this long (0 = never)
	OnState                func(Status)
	// Takeover makes the pull replace a live publisher of the stream at
	// its first packet (make-before-break: the replacement of another
	// pull delivers before the old one is closed).
	Takeover bool
	// Continues marks the pull's sessions as continuing the timeline of
	// the publisher they replace (media.PublisherInfo.Continues).
	Continues bool
	// Splice, with Takeover, makes the pull's first session wait to take
	// the stream over until the pull it replaces (HandOver) has delivered
	// up to its first keyframe: see Splice.
	Splice *Splice
	// OnEnd, when set, is called with the error each session that failed
	// ended with (not for a session that ended without one), before the pull reconnects or stops: also when the
	// run was cancelled meanwhile (a standby took the stream over as
	// the session ended), so the caller learns that its source died even
	// when Next is not called again.
	OnEnd func(err error)
}

// Puller fetches a remote RTMP, SRT or HTTP-FLV source and publishes it
// into the hub. Each connection is one publisher session: while the puller
// reconnects, the hub's reconnect grace keeps local readers attached, and
// they resume at the new session's first keyframe.
type Puller struct {
	loop
	hub *media.Hub
	cfg PullConfig
	// splice, once HandOver set it, carries the packets: a replacement
	// takes over from this pull
	splice atomic.Pointer[Splice]
	// lastWrite is when a session last had a packet (unix ns)
	lastWrite atomic.Int64
	// idleClock is the idle watch's time (wallClock; tests drive it)
	idleClock clock
	// heads are the codec headers the pull wrote last, per slot: a
	// Splice that takes over from it sends its replacement's only when
	// they differ
	heads [unit.NumSlots]atomic.Pointer[unit.Packet]
}

// clock is a source of time: now, and a ticker's channel and stop.
type clock struct {
	now    func() time.Time
	ticker func(d time.Duration) (<-chan time.Time, func())
}

var wallClock = clock{now: time.Now, ticker: func(d time.Duration) (<-chan time.Time, func()) {
	tk := time.NewTicker(d)
	return tk.C, tk.Stop
}}

// NewPuller returns a Puller; Run starts it.
func NewPuller(hub *media.Hub, cfg PullConfig, log *slog.Logger) *Puller {
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	p := &Puller{hub: hub, cfg: cfg, idleClock: wallClock}
	p.setup("pull", "source", cfg.Key, cfg.Next, cfg.MinBackoff, cfg.MaxBackoff, cfg.OnState, log)
	p.onStop = p.logStop
	return p
}

// Status returns the puller's current status.
func (p *Puller) Status() Status { return p.tr.status() }

// ErrIdleStop is the cause of a Run that stopped because nobody read the
// stream for IdleStop; Run itself returns nil then.
var ErrIdleStop = errors.New("no readers: on-demand pull stopped")

// Run pulls until ctx ends or the stream had no readers for IdleStop (both
// nil), or Next returns ErrStop (nil).
func (p *Puller) Run(ctx context.Context) error {
	if p.cfg.Next == nil {
		return fmt.Errorf("pull %s: no Next function", p.cfg.Key)
	}
	if err := media.CheckKey(p.cfg.Key); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer p.tr.set(StateStopped, "", nil)
	if p.cfg.IdleStop > 0 {
		go p.idleWatch(ctx, cancel)
	}
	return p.run(ctx, func(ctx context.Context, t Target) sessionEnd {
		ran, err := p.attempt(ctx, t)
		if p.cfg.OnEnd != nil && err != nil {
			p.cfg.OnEnd(err)
		}
		return sessionEnd{ran: ran, err: err}
	})
}

func (p *Puller) logStop(ctx context.Context) {
	if errors.Is(context.Cause(ctx), ErrIdleStop) {
		p.log.Info("pull stopped", "reason", ErrIdleStop.Error(), "idle", p.cfg.IdleStop)
	}
}

// idleWatch cancels the run when the stream had no readers for IdleStop.
func (p *Puller) idleWatch(ctx context.Context, cancel context.CancelCauseFunc) {
	step := min(p.cfg.IdleStop/4, time.Second)
	if step <= 0 {
		step = time.Millisecond
	}
	ticks, stop := p.idleClock.ticker(step)
	defer stop()
	// idle since the first sample that saw no reader (the start, before
	// any reader): the last reader left at most a step before it, so the
	// pull stops IdleStop to IdleStop+step after, never sooner
	idle := p.idleClock.now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			if s := p.hub.Stream(p.cfg.Key); s != nil && s.ReaderCount() > 0 {
				idle = time.Time{}
				continue
			}
			if idle.IsZero() {
				idle = now
			}
			if now.Sub(idle) >= p.cfg.IdleStop {
				cancel(ErrIdleStop)
				return
			}
		}
	}
}

// attempt runs one connection to t.
func (p *Puller) attempt(ctx context.Context, t Target) (time.Duration, error) {
	sch, u, err := scheme(t.URL)
	if err != nil {
		return 0, err
	}
	target := Redact(t.URL)
	p.tr.newSession()
	p.tr.set(StateConnecting, target, nil)
	p.log.Info("pull connecting", "source", target)
	sk := &sink{p: p, remote: target}
	defer sk.close()
	switch sch {
	case "srt":
		sk.info = media.PublisherInfo{Protocol: "srt-pull", Remote: target, Native: media.FormatTS}
		if err = pinSRTHost(ctx, t, u); err == nil {
			err = p.pullSRT(ctx, t, u, sk)
		}
	case "rtmp":
		sk.info = media.PublisherInfo{Protocol: "rtmp-pull", Remote: target, Native: media.FormatFLV}
		err = p.pullRTMP(ctx, t, u, sk)
	case "http", "https":
		sk.info = media.PublisherInfo{Protocol: "httpflv-pull", Remote: target, Native: media.FormatFLV}
		err = p.pullHTTPFLV(ctx, t, u, sk)
	default:
		err = fmt.Errorf("pull from %s: %w %q (want rtmp, srt, http or https)", target, ErrUnsupportedScheme, sch)
	}
	return sk.running(), err
}

// sink publishes a connection's packets, attaching to the hub at the
// first packet so that an empty connection never looks live.
type sink struct {
	p      *Puller
	info   media.PublisherInfo
	remote string
	pub    *media.Publisher
	start  time.Time
	// through: the session of a replacement passed its Splice
	through bool
}

func (s *sink) write(pk *unit.Packet) error {
	s.p.lastWrite.Store(time.Now().UnixNano())
	if pk.Header {
		s.p.heads[unit.HeaderSlot(pk)].Store(pk)
	}
	if sp := s.p.splice.Load(); sp != nil && !s.pacing() {
		return sp.oldWrite(pk, s.writeHub)
	}
	if sp := s.p.cfg.Splice; sp != nil && !s.through {
		if !sp.done.Load() {
			if waits, err := sp.newWrite(s, pk); waits || err != nil {
				return err
			}
		}
		s.through = true
	}
	if sp := s.p.cfg.Splice; sp != nil {
		if queued, err := sp.paced(pk, s.emit); queued || err != nil {
			return err
		}
	}
	return s.writeHub(pk)
}

// wantsFLV says whether the session's demuxer builds FLV video bodies
// (mpegts.Demuxer.SetWantFLV): always while its packets may be held (a
// replacement's or a standby's Splice) or before it is attached, else
// when the hub's publisher wants them.
func (s *sink) wantsFLV() bool {
	return s.p.cfg.Splice != nil || s.pub == nil || s.pub.WantsFLV()
}

// pacing says whether the session is a standby's that took over and
// paces its released buffer out (Splice.paced).
func (s *sink) pacing() bool {
	sp := s.p.cfg.Splice
	return sp != nil && s.through && sp.queued()
}

// emit writes a packet of a session that passed its Splice: through the
// Splice this pull was handed over to, if any.
func (s *sink) emit(pk *unit.Packet) error {
	if sp := s.p.splice.Load(); sp != nil {
		return sp.oldWrite(pk, s.writeHub)
	}
	return s.writeHub(pk)
}

// writeHub writes pk into the hub, publishing at the first packet.
func (s *sink) writeHub(pk *unit.Packet) error {
	if err := s.publish(); err != nil {
		return err
	}
	if err := s.pub.Write(pk); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// publish attaches the session to the hub, unless it is.
func (s *sink) publish() error {
	if s.pub != nil {
		return nil
	}
	info := s.info
	info.Takeover = s.p.cfg.Takeover
	info.Continues = s.p.cfg.Continues
	pub, err := s.p.hub.Publish(s.p.cfg.Key, info)
	if err != nil {
		return fmt.Errorf("publish into the hub: %w", err)
	}
	s.pub, s.start = pub, time.Now()
	s.p.tr.set(StateRunning, "", nil)
	s.p.log.Info("pull running", "source", s.remote)
	return nil
}

func (s *sink) running() time.Duration {
	if s.pub == nil {
		return 0
	}
	return time.Since(s.start)
}

func (s *sink) close() {
	if sp := s.p.splice.Load(); sp != nil {
		sp.oldEnd()
	}
	if sp := s.p.cfg.Splice; sp != nil {
		sp.newEnd(s)
		if s.through && s.pub != nil {
			sp.flush(s.emit)
		}
	}
	if s.pub != nil {
		s.pub.Close()
	}
}
