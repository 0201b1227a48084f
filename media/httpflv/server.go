// Package httpflv serves live streams as HTTP-FLV: GET /APP/NAME.flv.
package httpflv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
	"github.com/relaymesh/relaymesh/netutil"
)

// Config is the HTTP media listener's configuration.
type Config struct {
	Listen         string
	WriteTimeout   time.Duration
	HeaderTimeout  time.Duration
	MaxConnections int
	PlayWait       time.Duration
	WriteCoalesce  time.Duration    // players get packets at most once per window (0 = at once)
	Authorize      media.Authorizer // asked before every play (protocol "httpflv")
	// Next serves every request that is not for /APP/NAME.flv (HLS,
	// WebRTC, the web page); nil answers them 404.
	Next http.Handler
}

// Server is the HTTP media listener.
type Server struct {
	cfg  atomic.Pointer[Config]
	hub  *media.Hub
	log  *slog.Logger
	ln   net.Listener
	http *http.Server

	active atomic.Int64
	wg     sync.WaitGroup
	once   sync.Once
	// done is cancelled by Close: players end (context.AfterFunc, no
	// goroutine per player waits on it)
	done     context.Context
	shutdown context.CancelFunc
}

// New binds the listener.
func New(cfg Config, hub *media.Hub, log *slog.Logger) (*Server, error) {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("http media listen %s: %w", cfg.Listen, err)
	}
	s := &Server{hub: hub, log: log.With("component", "httpflv"), ln: ln}
	s.done, s.shutdown = context.WithCancel(context.Background())
	s.cfg.Store(&cfg)
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.HeaderTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// SetConfig applies a reloaded configuration (the listen address is fixed).
func (s *Server) SetConfig(cfg Config) {
	cfg.Listen = s.cfg.Load().Listen
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	s.cfg.Store(&cfg)
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	err := s.http.Serve(s.ln)
	s.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ConnCount returns the number of players being served.
func (s *Server) ConnCount() int { return int(s.active.Load()) }

// Close stops the listener and ends every reader. Idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.shutdown()
		err = s.http.Close()
		// http.Server closes only listeners it serves: this one may never
		// have been (Close after a failed agent start or reload)
		if cerr := s.ln.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	})
	return err
}

// ServeHTTP serves GET /APP/NAME.flv and hands every other path to Next.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Load()
	if cfg.Next != nil && !strings.HasSuffix(r.URL.Path, ".flv") {
		cfg.Next.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD are served here", http.StatusMethodNotAllowed)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if !strings.HasSuffix(path, ".flv") {
		http.Error(w, "not found: live streams are at /APP/NAME.flv", http.StatusNotFound)
		return
	}
	key := strings.TrimSuffix(path, ".flv")
	if err := media.CheckKey(key); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	log := s.log.With("remote", r.RemoteAddr, "stream", key)
	if cfg.MaxConnections > 0 && s.active.Load() >= int64(cfg.MaxConnections) {
		log.Warn("connection refused", "reason", "too many connections")
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	if cfg.Authorize != nil {
		token, err := auth.TokenOf(r.URL.RawQuery)
		if err == nil {
			err = cfg.Authorize(media.Access{Protocol: "httpflv", Action: "play", Key: key, Token: token, Remote: netutil.RemoteAddr(r.RemoteAddr)})
		}
		if err != nil {
			log.Warn("play refused", "reason", err.Error())
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.done, cancel)()
	rd, err := s.hub.Subscribe(ctx, key, media.SubscribeOptions{
		Format:   media.FormatFLV,
		Info:     media.ReaderInfo{Protocol: "httpflv", Remote: r.RemoteAddr},
		Wait:     cfg.PlayWait,
		Coalesce: cfg.WriteCoalesce,
	})
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, media.ErrTooManyReaders) {
			status = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), status)
		return
	}
	defer rd.Close()
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "video/x-flv")
		return
	}
	s.active.Add(1)
	defer s.active.Add(-1)
	// Hijack so every reader writes the shared tag bytes with writev, not
	// through a per-connection copy into a chunked-encoding buffer.
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	defer nc.Close()
	brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nCache-Control: no-cache\r\n" +
		"Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n")
	brw.Write([]byte{'F', 'L', 'V', 1, flvFlags(rd.Stream().Codecs()), 0, 0, 0, 9, 0, 0, 0, 0})
	nc.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	if err := brw.Flush(); err != nil {
		return
	}
	log.Info("playing")
	snd := media.Sender{Conn: nc, Wire: (*unit.Packet).AppendFLV, HeaderScratch: unit.FLVHeaderScratch, WriteTimeout: cfg.WriteTimeout}
	nc.SetReadDeadline(time.Time{})
	// The stream's fan-out writer sends the media; this goroutine waits
	// for the client to leave (it sends nothing more: a read returning
	// means it left), cut short when the writer is done with the player
	// or the server closes, so a player costs no goroutine but its own.
	cut := func() { nc.SetReadDeadline(time.Unix(1, 0)) }
	if k := snd.Start(rd, cut); k != nil {
		stop := context.AfterFunc(ctx, cut)
		var b [1]byte
		nc.Read(b[:])
		stop()
		err = k.End()
	} else {
		go func() {
			var b [1]byte
			nc.Read(b[:])
			cancel()
		}()
		err = snd.Send(ctx, rd)
	}
	var werr *media.WriteError
	switch {
	case errors.As(err, &werr):
		log.Info("player gone", "reason", werr.Err.Error())
	case errors.Is(err, media.ErrSlowReader):
		log.Warn("player disconnected", "reason", err.Error())
	default:
		log.Info("playback ended", "reason", err.Error())
	}
}

// flvFlags announces audio (4) and video (1) as far as the stream is known,
// so players do not wait for a track that never comes.
func flvFlags(c unit.CodecInfo) byte {
	switch {
	case c.Video != "" && c.Audio == "":
		return 1
	case c.Audio != "" && c.Video == "":
		return 4
	}
	return 5
}
