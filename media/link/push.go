package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/media"
)

// PushConfig configures a Pusher.
type PushConfig struct {
	Key        string                                           // the hub stream to read
	Next       func(attempt int, lastErr error) (Target, error) // called before each (re)connect: failover lives here
	MinBackoff time.Duration                                    // default 500ms; the first reconnect after a working session is immediate
	MaxBackoff time.Duration                                    // default 10s
	Persistent bool                                             // keep waiting for the stream when it is not live / ended (relays); else Run returns when it ends
	OnState    func(Status)
	// StartWait is how long a non-persistent pusher waits for the stream to
	// be live before its first attempt (default 5s).
	StartWait time.Duration
}

// Pusher reads a hub stream and sends it to a remote RTMP or SRT target.
type Pusher struct {
	loop
	hub *media.Hub
	cfg PushConfig
}

// NewPusher returns a Pusher; Run starts it.
func NewPusher(hub *media.Hub, cfg PushConfig, log *slog.Logger) *Pusher {
	if cfg.StartWait <= 0 {
		cfg.StartWait = 5 * time.Second
	}
	p := &Pusher{hub: hub, cfg: cfg}
	p.setup("push", "target", cfg.Key, cfg.Next, cfg.MinBackoff, cfg.MaxBackoff, cfg.OnState, log)
	return p
}

// Status returns the pusher's current status.
func (p *Pusher) Status() Status { return p.tr.status() }

// errStreamGone ends a non-persistent run.
var errStreamGone = errors.New("stream ended")

// Run pushes until ctx ends (nil), the stream ends and the pusher is not
// persistent (nil), Next returns ErrStop (nil), or the stream never went
// live (an error wrapping media.ErrNoStream).
func (p *Pusher) Run(ctx context.Context) error {
	if p.cfg.Next == nil {
		return fmt.Errorf("push %s: no Next function", p.cfg.Key)
	}
	var held *media.Reader // the last attempt's reader, kept until the next one subscribed
	defer func() {
		if held != nil {
			held.Close()
		}
		p.tr.set(StateStopped, "", nil)
	}()
	seen := false
	return p.run(ctx, func(ctx context.Context, t Target) sessionEnd {
		ran, err := p.attempt(ctx, t, &held, &seen)
		switch {
		case errors.Is(err, errStreamGone):
			return sessionEnd{stop: !p.cfg.Persistent, fresh: true}
		case errors.Is(err, media.ErrNoStream) && !p.cfg.Persistent:
			if seen {
				return sessionEnd{stop: true}
			}
			p.tr.set(StateStopped, "", err)
			return sessionEnd{stop: true, ret: fmt.Errorf("push %s: %w", p.cfg.Key, err)}
		}
		return sessionEnd{ran: ran, err: err}
	})
}

// attempt runs one connection to t. running is how long it was live.
func (p *Pusher) attempt(ctx context.Context, t Target, held **media.Reader, seen *bool) (time.Duration, error) {
	sch, u, err := scheme(t.URL)
	if err != nil {
		return 0, err
	}
	var format media.Format
	switch sch {
	case "srt":
		format = media.FormatTS
	case "rtmp":
		format = media.FormatFLV
	default:
		return 0, fmt.Errorf("push to %s: %w %q (want rtmp or srt)", Redact(t.URL), ErrUnsupportedScheme, sch)
	}
	target := Redact(t.URL)
	r, err := p.subscribe(ctx, format, sch+"-push", target, *seen)
	if err != nil {
		return 0, err
	}
	*seen = true
	// The new reader starts at the newest keyframe with the headers; the
	// old one is closed only now, so a TS remuxer keeps running across the
	// reconnect and the new reader finds a fresh keyframe.
	if *held != nil {
		(*held).Close()
	}
	*held = r
	p.tr.newSession()
	p.tr.set(StateConnecting, target, nil)
	p.log.Info("push connecting", "target", target)
	if sch == "srt" {
		if err := pinSRTHost(ctx, t, u); err != nil {
			return 0, err
		}
		return p.pushSRT(ctx, t, u, r)
	}
	return p.pushRTMP(ctx, t, u, r)
}

// subscribe attaches a reader, waiting for the stream as configured.
func (p *Pusher) subscribe(ctx context.Context, f media.Format, proto, target string, seen bool) (*media.Reader, error) {
	opt := media.SubscribeOptions{Format: f, Info: media.ReaderInfo{Protocol: proto, Remote: target}}
	if !p.cfg.Persistent {
		if !seen {
			opt.Wait = p.cfg.StartWait
		}
		return p.hub.Subscribe(ctx, p.cfg.Key, opt)
	}
	if p.hub.Stream(p.cfg.Key) == nil {
		p.tr.set(StateWaiting, target, nil)
	}
	for {
		opt.Wait = time.Minute
		r, err := p.hub.Subscribe(ctx, p.cfg.Key, opt)
		if err == nil || !errors.Is(err, media.ErrNoStream) || ctx.Err() != nil {
			return r, err
		}
		p.tr.set(StateWaiting, target, nil)
	}
}

// statsLoop refreshes the SRT statistics every second until the returned
// stop is called; stop records them a last time, so the session's counters
// include its end. Call stop before closing the connection.
func statsLoop(tr *tracker, read func() *SRTStats) (stop func()) {
	tr.setSRT(read())
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
				tr.setSRT(read())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
			tr.setSRT(read())
		})
	}
}
