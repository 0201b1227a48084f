package edge

// A stand-in for media/relay's Pusher (see the relay API notes) with the
// same shape, used until that package lands; then these names become
// aliases of relay.Target, relay.Status, relay.PushConfig and
// relay.NewPusher.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/relaymesh/relaymesh/media"
)

type relayTarget struct {
	URL             string
	Passphrase      string
	PBKeyLen        int
	Latency         time.Duration
	PeerIdleTimeout time.Duration
	DSCP            int
}

type relayState string

type relayStatus struct {
	State      relayState `json:"state"`
	Target     string     `json:"target"`
	Since      time.Time  `json:"since"`
	LastError  string     `json:"last_error,omitempty"`
	Reconnects int        `json:"reconnects"`
	Bytes      uint64     `json:"bytes"`
}

type pushConfig struct {
	Key        string
	Next       func(attempt int, lastErr error) (relayTarget, error)
	MinBackoff time.Duration
	MaxBackoff time.Duration
	OnState    func(relayStatus)
}

type pusher struct {
	hub *media.Hub
	cfg pushConfig
	log *slog.Logger
	mu  sync.Mutex
	st  relayStatus
}

func newPusher(hub *media.Hub, cfg pushConfig, log *slog.Logger) *pusher {
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	return &pusher{hub: hub, cfg: cfg, log: log, st: relayStatus{State: "connecting", Since: time.Now()}}
}

func (p *pusher) Status() relayStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *pusher) set(f func(*relayStatus)) {
	p.mu.Lock()
	f(&p.st)
	st := p.st
	p.mu.Unlock()
	if p.cfg.OnState != nil {
		p.cfg.OnState(st)
	}
}

// Run pushes until ctx ends or the stream ends.
func (p *pusher) Run(ctx context.Context) error {
	defer p.set(func(s *relayStatus) { s.State, s.Since = "stopped", time.Now() })
	backoff := time.Duration(0)
	var lastErr error
	for attempt := 0; ; attempt++ {
		if backoff > 0 {
			p.set(func(s *relayStatus) { s.State, s.Since = "backoff", time.Now() })
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if p.hub.Stream(p.cfg.Key) == nil {
			return nil // the stream ended
		}
		t, err := p.cfg.Next(attempt, lastErr)
		if err != nil {
			lastErr = err
			backoff = min(max(2*backoff, p.cfg.MinBackoff), p.cfg.MaxBackoff)
			p.set(func(s *relayStatus) { s.LastError = err.Error() })
			continue
		}
		p.set(func(s *relayStatus) { s.State, s.Target, s.Since = "connecting", redact(t.URL), time.Now() })
		start := time.Now()
		ended, err := p.session(ctx, t)
		if ended || ctx.Err() != nil {
			return nil
		}
		lastErr = err
		p.set(func(s *relayStatus) {
			s.Reconnects++
			if err != nil {
				s.LastError = err.Error()
			}
		})
		if time.Since(start) > 5*time.Second {
			backoff = 0 // a working session ended: reconnect at once
		} else {
			backoff = min(max(2*backoff, p.cfg.MinBackoff), p.cfg.MaxBackoff)
		}
	}
}

// session sends the stream's TS lane over one SRT connection. ended
// reports that the stream ended.
func (p *pusher) session(ctx context.Context, t relayTarget) (ended bool, err error) {
	conn, err := dialSRT(t)
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rd, err := p.hub.Subscribe(sctx, p.cfg.Key, media.SubscribeOptions{Format: media.FormatTS})
	if err != nil {
		conn.Close()
		return errors.Is(err, media.ErrNoStream), err
	}
	defer rd.Close()
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		defer cancel()
		b := make([]byte, 1500)
		for {
			if _, err := conn.Read(b); err != nil {
				return
			}
		}
	}()
	defer func() {
		conn.Close()
		<-gone
	}()
	p.set(func(s *relayStatus) { s.State, s.Since = "running", time.Now() })
	send := func(b []byte) error {
		for waited := time.Duration(0); ; waited += 5 * time.Millisecond {
			if _, err := conn.Write(b); err == nil {
				return nil
			}
			select {
			case <-gone:
				return errors.New("backbone link closed (peer idle or refused)")
			case <-time.After(5 * time.Millisecond):
			}
			if waited > 5*time.Second {
				return errors.New("backbone send queue stayed full")
			}
		}
	}
	out := make([]byte, 0, 1316)
	pkts := make([]*media.Packet, 0, 64)
	for {
		pkts, err = rd.Next(sctx, pkts)
		for _, pk := range pkts {
			for b := pk.Payload; len(b) > 0; {
				k := min(1316-len(out), len(b))
				out = append(out, b[:k]...)
				b = b[k:]
				if len(out) == 1316 {
					if e := send(out); e != nil {
						return false, e
					}
					out = out[:0]
				}
			}
			n := uint64(len(pk.Payload))
			p.mu.Lock()
			p.st.Bytes += n
			p.mu.Unlock()
		}
		if len(out) > 0 {
			if e := send(out); e != nil {
				return false, e
			}
			out = out[:0]
		}
		if err != nil {
			select {
			case <-gone:
				return false, errors.New("backbone link closed (peer idle or refused)")
			default:
			}
			return errors.Is(err, media.ErrStreamEnded), err
		}
	}
}

// dialSRT opens an SRT caller connection to t.
func dialSRT(t relayTarget) (gosrt.Conn, error) {
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "srt" {
		return nil, fmt.Errorf("target %q is not srt://host:port?streamid=...", redact(t.URL))
	}
	c := gosrt.DefaultConfig()
	c.StreamId = u.Query().Get("streamid")
	c.Passphrase = t.Passphrase
	if t.Passphrase != "" {
		c.PBKeylen = 16
		if t.PBKeyLen != 0 {
			c.PBKeylen = t.PBKeyLen
		}
	}
	lat := t.Latency
	if lat == 0 {
		lat = 120 * time.Millisecond
	}
	c.Latency, c.ReceiverLatency, c.PeerLatency = lat, lat, lat
	c.PeerIdleTimeout = t.PeerIdleTimeout
	if c.PeerIdleTimeout == 0 {
		c.PeerIdleTimeout = 2 * time.Second
	}
	c.ConnectionTimeout = 2 * time.Second
	if t.DSCP > 0 {
		c.IPTOS = t.DSCP << 2
	}
	conn, err := gosrt.Dial("srt", u.Host, c)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.Host, err)
	}
	return conn, nil
}

func redact(s string) string {
	if i := strings.Index(s, "token="); i >= 0 {
		return s[:i] + "token=REDACTED"
	}
	return s
}
