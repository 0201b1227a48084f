package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// loop is the reconnect state machine that a Pusher and a Puller share:
// it asks next for a target before each connection, runs one session,
// reconnects at once after a session that was live for minRunning, backs
// off after failures, and reports it all in tr.
type loop struct {
	tr         tracker
	log        *slog.Logger
	role, peer string // "push" or "pull"; the log key of the remote end
	next       func(attempt int, lastErr error) (Target, error)
	minBackoff time.Duration
	maxBackoff time.Duration
	onStop     func(ctx context.Context) // called when the run ends with ctx; may be nil
}

// setup fills in the defaults; the loop is Stopped until run.
func (l *loop) setup(role, peer, key string, next func(int, error) (Target, error), minBackoff, maxBackoff time.Duration, onState func(Status), log *slog.Logger) {
	if minBackoff <= 0 {
		minBackoff = DefaultMinBackoff
	}
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxBackoff
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l.role, l.peer, l.next = role, peer, next
	l.minBackoff, l.maxBackoff = minBackoff, max(maxBackoff, minBackoff)
	l.log = log.With("component", "relay", "role", role, "stream", key)
	l.tr.onState = onState
	l.tr.st = Status{State: StateStopped, Since: time.Now()}
}

// sessionEnd is how one session ended.
type sessionEnd struct {
	ran   time.Duration // how long it was live
	err   error
	stop  bool // the run ends now, returning ret
	ret   error
	fresh bool // reconnect at once, with no error and the backoff reset
}

// run loops until ctx ends (nil), next returns ErrStop (nil) or a session
// says stop. session runs one connection to t.
func (l *loop) run(ctx context.Context, session func(ctx context.Context, t Target) sessionEnd) error {
	attempt, fails := 0, 0
	var lastErr error
	for {
		if ctx.Err() != nil {
			return l.stopped(ctx)
		}
		if attempt > 0 {
			l.tr.reconnected()
		}
		t, err := l.next(attempt, lastErr)
		attempt++
		if err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			lastErr = fmt.Errorf("choose target: %w", err)
		} else {
			end := session(ctx, t)
			switch {
			case ctx.Err() != nil:
				return l.stopped(ctx)
			case end.stop:
				return end.ret
			case end.fresh:
				lastErr, fails = nil, 0
				continue
			}
			lastErr = end.err
			if end.ran >= minRunning {
				// a working session broke: reconnect at once
				l.log.Warn(l.role+" session ended, reconnecting", l.peer, Redact(t.URL), "err", end.err, "ran", end.ran.Round(time.Millisecond))
				l.tr.set(StateConnecting, "", end.err)
				fails = 0
				continue
			}
		}
		fails++
		wait := backoff(l.minBackoff, l.maxBackoff, fails)
		l.log.Warn(l.role+" attempt failed", "err", lastErr, "retry_in", wait)
		l.tr.set(StateBackoff, "", lastErr)
		if !sleepCtx(ctx, wait) {
			return l.stopped(ctx)
		}
	}
}

func (l *loop) stopped(ctx context.Context) error {
	if l.onStop != nil {
		l.onStop(ctx)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
