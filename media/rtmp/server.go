// Package rtmp is the RTMP endpoint: a server that publishers push to and
// players read from, on top of the media hub. The handshake, chunk stream
// and AMF0 codecs come from gortmplib; the session logic is ours so that
// media bodies pass through untouched and each packet is chunked once for
// every reader.
package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media"
)

// Config is the RTMP listener's configuration.
type Config struct {
	Listen           string
	HandshakeTimeout time.Duration // handshake and commands up to publish/play
	ReadTimeout      time.Duration // publisher silence before it is cut
	WriteTimeout     time.Duration // a reader blocked this long is cut
	MaxConnections   int           // 0 = unlimited
	PlayWait         time.Duration // how long play waits for a stream that is not live
	WriteCoalesce    time.Duration // players get packets at most once per window (0 = at once)
	// Authorize is asked before every publish and play (protocol "rtmp";
	// the token is the one in the query the client sent with the stream
	// name).
	Authorize media.Authorizer
}

func (c *Config) defaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
}

// Server accepts RTMP connections.
type Server struct {
	cfg atomic.Pointer[Config]
	hub *media.Hub
	log *slog.Logger
	ln  net.Listener

	mu     sync.Mutex
	conns  map[*conn]struct{}
	wg     sync.WaitGroup
	closed bool

	Refused atomic.Uint64 // connections closed for bad input, limits or auth
}

// New binds the listener.
func New(cfg Config, hub *media.Hub, log *slog.Logger) (*Server, error) {
	cfg.defaults()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("rtmp listen %s: %w", cfg.Listen, err)
	}
	s := &Server{hub: hub, log: log.With("component", "rtmp"), ln: ln, conns: map[*conn]struct{}{}}
	s.cfg.Store(&cfg)
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// SetConfig applies a reloaded configuration (the listen address is fixed).
func (s *Server) SetConfig(cfg Config) {
	cfg.defaults()
	cfg.Listen = s.cfg.Load().Listen
	s.cfg.Store(&cfg)
}

// Run accepts connections until ctx ends, then closes every connection.
func (s *Server) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.isClosed() || ctx.Err() != nil {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and friends: back off, never spin
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := &conn{srv: s, nc: nc, log: s.log.With("remote", nc.RemoteAddr().String())}
		if !s.track(c) {
			s.Refused.Add(1)
			c.log.Warn("connection refused", "reason", "too many connections")
			nc.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			c.serve(ctx)
		}()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if max := s.cfg.Load().MaxConnections; max > 0 && len(s.conns) >= max {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// ConnCount returns the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops accepting and closes publishers at once; players are ended by
// the hub (they receive what was written, then a clean end). Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.shutdown()
	}
	return err
}
