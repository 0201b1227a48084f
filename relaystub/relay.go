// Package relaystub stands in for media/relay (push and pull with
// reconnect) under the same names until that package lands; then callers
// switch their import and this package is deleted. Run reports that no
// remote transport is built in, so flows, relays and tasks show a clear
// last error instead of silently doing nothing.
package relaystub

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/media"
)

// ErrUnavailable is what Run returns: remote push/pull is not built in.
var ErrUnavailable = errors.New("remote push/pull (media/relay) is not built into this relaymesh yet")

// Target is one remote endpoint.
type Target struct {
	URL             string
	Passphrase      string
	PBKeyLen        int
	Latency         time.Duration
	PeerIdleTimeout time.Duration
	DSCP            int
}

// State of a pusher or puller.
type State string

// States.
const (
	StateConnecting State = "connecting"
	StateRunning    State = "running"
	StateBackoff    State = "backoff"
	StateStopped    State = "stopped"
)

// Status is a pusher's or puller's state for the API.
type Status struct {
	State      State     `json:"state"`
	Target     string    `json:"target"`
	Since      time.Time `json:"since"`
	LastError  string    `json:"last_error,omitempty"`
	Reconnects int       `json:"reconnects"`
	Bytes      uint64    `json:"bytes"`
}

// PushConfig configures a Pusher.
type PushConfig struct {
	Key                    string
	Next                   func(attempt int, lastErr error) (Target, error)
	MinBackoff, MaxBackoff time.Duration
	Persistent             bool
	OnState                func(Status)
}

// PullConfig configures a Puller.
type PullConfig struct {
	Key                    string
	Next                   func(attempt int, lastErr error) (Target, error)
	MinBackoff, MaxBackoff time.Duration
	ReadTimeout            time.Duration
	IdleStop               time.Duration
	OnState                func(Status)
}

type worker struct {
	next    func(int, error) (Target, error)
	onState func(Status)
	mu      sync.Mutex
	st      Status
}

func (w *worker) run(ctx context.Context) error {
	t, err := w.next(0, nil)
	if err == nil {
		err = ErrUnavailable
	}
	w.set(Status{State: StateBackoff, Target: redact(t.URL), Since: time.Now(), LastError: err.Error()})
	<-ctx.Done()
	w.set(Status{State: StateStopped, Target: redact(t.URL), Since: time.Now(), LastError: err.Error()})
	return nil
}

func (w *worker) set(s Status) {
	w.mu.Lock()
	w.st = s
	w.mu.Unlock()
	if w.onState != nil {
		w.onState(s)
	}
}

func (w *worker) status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	q := p.Query()
	for _, k := range []string{"passphrase", "token", "key"} {
		if q.Has(k) {
			q.Set(k, "REDACTED")
		}
	}
	p.RawQuery = q.Encode()
	p.User = nil
	return p.String()
}

// Pusher sends a hub stream to a remote target.
type Pusher struct{ w worker }

// NewPusher returns a pusher.
func NewPusher(hub *media.Hub, cfg PushConfig, log *slog.Logger) *Pusher {
	return &Pusher{w: worker{next: cfg.Next, onState: cfg.OnState}}
}

// Run blocks until ctx ends.
func (p *Pusher) Run(ctx context.Context) error { return p.w.run(ctx) }

// Status returns the current status.
func (p *Pusher) Status() Status { return p.w.status() }

// Puller publishes a remote stream into the hub.
type Puller struct{ w worker }

// NewPuller returns a puller.
func NewPuller(hub *media.Hub, cfg PullConfig, log *slog.Logger) *Puller {
	return &Puller{w: worker{next: cfg.Next, onState: cfg.OnState}}
}

// Run blocks until ctx ends.
func (p *Puller) Run(ctx context.Context) error { return p.w.run(ctx) }

// Status returns the current status.
func (p *Puller) Status() Status { return p.w.status() }
