package center

// A stand-in for media/relay's Puller (see the relay API notes) with the
// same shape, used until that package lands; then these names become
// aliases of relay.Target, relay.Status, relay.PullConfig and
// relay.NewPuller.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
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

type pullConfig struct {
	Key                    string
	Next                   func(attempt int, lastErr error) (relayTarget, error)
	MinBackoff, MaxBackoff time.Duration
	ReadTimeout            time.Duration
	IdleStop               time.Duration
}

type puller struct {
	hub   *media.Hub
	cfg   pullConfig
	log   *slog.Logger
	mu    sync.Mutex
	st    relayStatus
	bytes atomic.Uint64
}

func newPuller(hub *media.Hub, cfg pullConfig, log *slog.Logger) *puller {
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	return &puller{hub: hub, cfg: cfg, log: log, st: relayStatus{State: "connecting", Since: time.Now()}}
}

func (p *puller) Status() relayStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	st.Bytes = p.bytes.Load()
	return st
}

func (p *puller) set(f func(*relayStatus)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
}

// Run pulls until ctx ends or nobody read the stream for IdleStop.
func (p *puller) Run(ctx context.Context) error {
	defer p.set(func(s *relayStatus) { s.State, s.Since = "stopped", time.Now() })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p.cfg.IdleStop > 0 {
		go func() {
			idleSince := time.Now()
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					if st := p.hub.Stream(p.cfg.Key); st != nil && st.ReaderCount() > 0 {
						idleSince = now
					} else if now.Sub(idleSince) >= p.cfg.IdleStop {
						p.log.Info("on-demand pull idle: stopping", "idle", p.cfg.IdleStop.String())
						cancel()
						return
					}
				}
			}
		}()
	}
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
		t, err := p.cfg.Next(attempt, lastErr)
		if err != nil {
			lastErr = err
			backoff = min(max(2*backoff, p.cfg.MinBackoff), p.cfg.MaxBackoff)
			p.set(func(s *relayStatus) { s.LastError = err.Error() })
			continue
		}
		p.set(func(s *relayStatus) { s.State, s.Target, s.Since = "connecting", t.URL, time.Now() })
		start := time.Now()
		err = p.session(ctx, t)
		if ctx.Err() != nil {
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
			backoff = 0
		} else {
			backoff = min(max(2*backoff, p.cfg.MinBackoff), p.cfg.MaxBackoff)
		}
	}
}

func (p *puller) session(ctx context.Context, t relayTarget) error {
	conn, err := dialSRT(t)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	var pub *media.Publisher
	defer func() {
		if pub != nil {
			pub.Close()
		}
	}()
	dm := mpegts.NewDemuxer()
	var werr error
	emit := func(pk *media.Packet) {
		if werr == nil {
			werr = pub.Write(pk)
		}
	}
	var timedOut atomic.Bool
	wd := time.AfterFunc(p.cfg.ReadTimeout, func() { timedOut.Store(true); conn.Close() })
	defer wd.Stop()
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if timedOut.Load() {
				return fmt.Errorf("source sent nothing for %s", p.cfg.ReadTimeout)
			}
			return fmt.Errorf("backbone link closed: %w", err)
		}
		wd.Reset(p.cfg.ReadTimeout)
		if pub == nil {
			pub, err = p.hub.Publish(p.cfg.Key, media.PublisherInfo{Protocol: pullProtocol, Remote: conn.RemoteAddr().String(), Since: time.Now(), Native: media.FormatTS})
			if err != nil {
				return fmt.Errorf("publish %s: %w", p.cfg.Key, err)
			}
			p.set(func(s *relayStatus) { s.State, s.Since = "running", time.Now() })
		}
		p.bytes.Add(uint64(n))
		if err := dm.Feed(buf[:n], emit); err != nil {
			return fmt.Errorf("bad TS from the source: %w", err)
		}
		if werr != nil {
			return fmt.Errorf("hub: %w", werr)
		}
	}
}

// dialSRT opens an SRT caller connection to t.
func dialSRT(t relayTarget) (gosrt.Conn, error) {
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "srt" {
		return nil, errors.New("target is not srt://host:port?streamid=...")
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
