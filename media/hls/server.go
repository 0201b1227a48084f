// Package hls serves live streams of the hub as HLS from memory, with
// github.com/bluenviron/gohlslib/v2:
//
//	GET /APP/NAME/index.m3u8   Low-Latency HLS, fMP4 (H.264/H.265 + AAC), parts, blocking reload
//	GET /APP/NAME/plain.m3u8   plain HLS, MPEG-TS segments (H.264 + AAC), for old players
//
// A muxer per stream and variant starts at the first request and is
// closed after IdleTimeout without one (always-on streams keep theirs).
// A reader is a session: one client address (and play token, when
// TokenSessions) reading a stream, alive while it makes a request at
// least every SessionTimeout; each session holds a hub reader, so it
// counts in the stream's readers and against the per-stream reader limit.
package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/netutil"
)

// Defaults.
const (
	DefaultPartDuration   = 200 * time.Millisecond
	DefaultSegmentCount   = 7
	DefaultIdleTimeout    = 30 * time.Second
	DefaultSessionTimeout = 10 * time.Second
	DefaultBlockTimeout   = 15 * time.Second
	DefaultMaxBlocked     = 256
)

var errPlainH265 = errors.New("plain HLS (MPEG-TS) carries H.264 only: play index.m3u8 (fMP4) for H.265")

// Config is the HLS output's configuration.
type Config struct {
	PartDuration   time.Duration // LL-HLS part duration (segments follow the GOP)
	SegmentCount   int           // segments kept per muxer (at least 7)
	IdleTimeout    time.Duration // a muxer without requests for this long is closed
	SessionTimeout time.Duration // a reader without requests for this long is gone
	BlockTimeout   time.Duration // bound for a request waiting on a playlist or part
	MaxBlocked     int           // waiting requests per muxer beyond which 503 is answered
	PlayWait       time.Duration // how long a request waits for a stream that is not live
	AlwaysOn       []string      // streams whose LL-HLS muxer runs without readers
	// TokenSessions: the play token tells a client's sessions apart. Only
	// when Authorize verifies it (signed play URLs): an unverified token
	// would let one client open a session (a hub reader) per request.
	TokenSessions bool
	Authorize     media.Authorizer // asked before every request (protocol "hls")
}

func (c *Config) defaults() {
	if c.PartDuration <= 0 {
		c.PartDuration = DefaultPartDuration
	}
	if c.SegmentCount < DefaultSegmentCount {
		c.SegmentCount = DefaultSegmentCount
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = DefaultBlockTimeout
	}
	if c.MaxBlocked <= 0 {
		c.MaxBlocked = DefaultMaxBlocked
	}
}

// Server is the HLS output: an http.Handler for the HTTP media listener.
type Server struct {
	cfg atomic.Pointer[Config]
	hub *media.Hub
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	muxers   map[muxKey]*muxer
	sessions map[string]*session
}

type muxKey struct {
	stream  string
	variant gohlslib.MuxerVariant
}

type session struct {
	rd   *media.Reader
	last atomic.Int64
}

// New returns an HLS output reading from hub.
func New(cfg Config, hub *media.Hub, log *slog.Logger) (*Server, error) {
	cfg.defaults()
	for _, k := range cfg.AlwaysOn {
		if err := media.CheckKey(k); err != nil {
			return nil, fmt.Errorf("always_on: %w", err)
		}
	}
	s := &Server{hub: hub, log: log.With("component", "hls"),
		muxers: map[muxKey]*muxer{}, sessions: map[string]*session{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cfg.Store(&cfg)
	return s, nil
}

// SetConfig applies a reloaded configuration. Running muxers keep their
// part duration; new ones use the new one.
func (s *Server) SetConfig(cfg Config) {
	cfg.defaults()
	s.cfg.Store(&cfg)
}

// Run closes idle muxers and sessions and keeps the always-on muxers
// running until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.sweep(time.Now())
		select {
		case <-ctx.Done():
			s.Close()
			return nil
		case <-s.ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) sweep(now time.Time) {
	cfg := s.cfg.Load()
	on := map[string]bool{}
	for _, k := range cfg.AlwaysOn {
		on[k] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, mx := range s.muxers {
		mx.alwaysOn.Store(on[k.stream] && k.variant == gohlslib.MuxerVariantLowLatency)
		idle := now.Sub(time.Unix(0, mx.last.Load())) > cfg.IdleTimeout
		if idle && !mx.alwaysOn.Load() && mx.waiting.Load() == 0 {
			mx.cancel()
		}
	}
	for k := range on {
		if _, ok := s.muxers[muxKey{k, gohlslib.MuxerVariantLowLatency}]; !ok {
			s.startLocked(muxKey{k, gohlslib.MuxerVariantLowLatency}, cfg).alwaysOn.Store(true)
		}
	}
	for k, ss := range s.sessions {
		if now.Sub(time.Unix(0, ss.last.Load())) > cfg.SessionTimeout {
			ss.rd.Close()
			delete(s.sessions, k)
		}
	}
}

// Close ends every muxer and session. Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		for k, ss := range s.sessions {
			ss.rd.Close()
			delete(s.sessions, k)
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

// MuxerCount returns how many muxers run.
func (s *Server) MuxerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.muxers)
}

// Handles reports whether a request path names an HLS file, so the HTTP
// listener can route it here.
func Handles(p string) bool {
	f := path.Base(p)
	return strings.HasSuffix(f, ".m3u8") || strings.HasSuffix(f, ".mp4") || strings.HasSuffix(f, ".ts")
}

// file kinds
const (
	kindPlaylist = iota // may wait: for content, or a blocking reload
	kindPart            // may wait: a preload hint
	kindFile            // never waits: init, segments, finished parts
)

// route maps the file name of a request to a variant and the name gohlslib
// serves it under.
func route(file string) (v gohlslib.MuxerVariant, name string, kind int, ok bool) {
	switch {
	case file == "index.m3u8":
		return gohlslib.MuxerVariantLowLatency, file, kindPlaylist, true
	case file == "plain.m3u8":
		return gohlslib.MuxerVariantMPEGTS, "main_stream.m3u8", kindPlaylist, true
	case strings.HasSuffix(file, "_stream.m3u8") && !strings.HasPrefix(file, "main_"):
		return gohlslib.MuxerVariantLowLatency, file, kindPlaylist, true
	case strings.HasSuffix(file, ".ts") && strings.Contains(file, "_main_seg"):
		return gohlslib.MuxerVariantMPEGTS, file, kindFile, true
	case strings.HasSuffix(file, ".mp4") && strings.Contains(file, "_part"):
		return gohlslib.MuxerVariantLowLatency, file, kindPart, true
	case strings.HasSuffix(file, ".mp4") && (strings.Contains(file, "_seg") || strings.HasSuffix(file, "_init.mp4")):
		return gohlslib.MuxerVariantLowLatency, file, kindFile, true
	}
	return 0, "", 0, false
}

// ServeHTTP serves GET /APP/NAME/FILE.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Load()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD are served here", http.StatusMethodNotAllowed)
		return
	}
	dir, file := path.Split(strings.TrimPrefix(r.URL.Path, "/"))
	key := strings.TrimSuffix(dir, "/")
	if err := media.CheckKey(key); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	variant, name, kind, ok := route(file)
	if !ok {
		http.Error(w, "not found: HLS is at /APP/NAME/index.m3u8 (LL-HLS) and /APP/NAME/plain.m3u8", http.StatusNotFound)
		return
	}
	log := s.log.With("remote", r.RemoteAddr, "stream", key)
	if cfg.Authorize != nil {
		token, err := auth.TokenOf(r.URL.RawQuery)
		if err == nil {
			err = cfg.Authorize(media.Access{Protocol: "hls", Action: "play", Key: key, Token: token, Remote: netutil.RemoteAddr(r.RemoteAddr)})
		}
		if err != nil {
			status := http.StatusForbidden
			if errors.Is(err, auth.ErrMissing) {
				status = http.StatusUnauthorized
			}
			log.Debug("hls request refused", "reason", err.Error())
			http.Error(w, err.Error(), status)
			return
		}
	}
	mx := s.muxer(muxKey{key, variant}, cfg)
	mx.last.Store(time.Now().UnixNano())
	t := time.NewTimer(cfg.PlayWait + cfg.BlockTimeout)
	defer t.Stop()
	select {
	case <-mx.ready:
	case <-mx.done:
	case <-r.Context().Done():
		return
	case <-t.C:
		http.Error(w, "timed out waiting for the stream's first keyframe", http.StatusServiceUnavailable)
		return
	}
	m, err := mx.muxer()
	if m == nil {
		status := http.StatusNotFound
		if errors.Is(err, errPlainH265) {
			status = http.StatusConflict
		}
		http.Error(w, err.Error(), status)
		return
	}
	ss, err := s.session(r, key, cfg)
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, media.ErrTooManyReaders) {
			status = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), status)
		return
	}
	req := r.Clone(context.Background())
	req.URL.Path = "/" + name
	if kind == kindFile {
		cw := &countWriter{ResponseWriter: w}
		m.Handle(cw, req)
		if !cw.wrote {
			http.Error(w, "no such segment (it may have left the playlist window)", http.StatusNotFound)
			return
		}
		ss.rd.BytesOut.Add(uint64(cw.n))
		return
	}
	if kind == kindPart {
		if status, msg := mx.partReady(r.Context(), m, name, cfg); status != 0 {
			http.Error(w, msg, status)
			return
		}
		// the part is complete: gohlslib serves it without waiting
		cw := &countWriter{ResponseWriter: w}
		m.Handle(cw, req)
		if !cw.wrote {
			http.Error(w, "no such part (it may have left the playlist window)", http.StatusNotFound)
			return
		}
		ss.rd.BytesOut.Add(uint64(cw.n))
		return
	}
	rec, status, msg := mx.call(r.Context(), m, req, cfg)
	if status != 0 {
		if status > 0 {
			http.Error(w, msg, status)
		}
		return
	}
	if rec.code == 0 && rec.body.Len() == 0 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	for k, v := range rec.h {
		w.Header()[k] = v
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	w.WriteHeader(rec.code)
	n, _ := w.Write(rec.body.Bytes())
	ss.rd.BytesOut.Add(uint64(n))
}

// call runs a gohlslib request that may wait. gohlslib blocks a playlist
// request (on a condition variable, without a context) until the content
// exists or the muxer closes; it runs on its own goroutine into a private
// buffer, so the caller is bounded by BlockTimeout and its context, and a
// request that gives up leaves only that goroutine, counted in reloads or
// playlists (at most MaxBlocked each) until gohlslib answers it. status is
// -1 when ctx ended, an HTTP status when the call was refused or timed out.
func (mx *muxer) call(ctx context.Context, m *gohlslib.Muxer, req *http.Request, cfg *Config) (rec *bufWriter, status int, msg string) {
	// a plain playlist request is answered at once once the stream has a
	// segment: blocked reloads filling MaxBlocked must not refuse it, nor
	// plain requests waiting for a first segment a blocking reload
	inflight, what := &mx.reloads, "blocking playlist reloads"
	if !req.URL.Query().Has("_HLS_msn") {
		inflight, what = &mx.playlists, "playlist requests"
	}
	if n := inflight.Add(1); n > int64(cfg.MaxBlocked) {
		inflight.Add(-1)
		return nil, http.StatusServiceUnavailable, fmt.Sprintf("too many %s waiting on this stream (%d): retry later", what, cfg.MaxBlocked)
	}
	mx.waiting.Add(1)
	defer mx.waiting.Add(-1)
	// w, not the named result: a return below sets rec to nil while the
	// goroutine may still be writing (a nil writer crashed the agent)
	w := &bufWriter{h: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer inflight.Add(-1)
		defer close(done)
		m.Handle(w, req)
	}()
	bt := time.NewTimer(cfg.BlockTimeout)
	defer bt.Stop()
	select {
	case <-done:
		return w, 0, ""
	case <-ctx.Done():
		return nil, -1, ""
	case <-bt.C:
		return nil, http.StatusServiceUnavailable, fmt.Sprintf("%s: not available within %s", path.Base(req.URL.Path), cfg.BlockTimeout)
	}
}

// partReady waits until the part called name is complete. gohlslib's own
// wait for a preload-hinted part keeps its lock when the muxer closes
// under it (every later request on that muxer would hang), so the wait
// is a blocking playlist reload for that part instead, which releases the
// lock. It returns 0 when the part is there (or was, and left the window),
// else an HTTP status and why.
func (mx *muxer) partReady(ctx context.Context, m *gohlslib.Muxer, name string, cfg *Config) (int, string) {
	// PREFIX_ID_partN.mp4
	f := strings.Split(strings.TrimSuffix(name, ".mp4"), "_")
	if len(f) != 3 || !strings.HasPrefix(f[2], "part") {
		return http.StatusNotFound, "no such part"
	}
	want, err := strconv.ParseUint(strings.TrimPrefix(f[2], "part"), 10, 64)
	if err != nil {
		return http.StatusNotFound, "no such part"
	}
	playlist := func(query string) (string, int, string) {
		req := (&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/" + f[1] + "_stream.m3u8", RawQuery: query}}).WithContext(context.Background())
		rec, status, msg := mx.call(ctx, m, req, cfg)
		if status != 0 {
			return "", status, msg
		}
		if rec.code != http.StatusOK {
			return "", http.StatusNotFound, "no such part"
		}
		return rec.body.String(), 0, ""
	}
	pl, status, msg := playlist("")
	if status != 0 {
		return status, msg
	}
	msn, parts, hint, ok := liveEdge(pl)
	switch {
	case !ok:
		return http.StatusNotFound, "no such part"
	case want < hint:
		return 0, "" // complete (or gone: gohlslib answers nothing, the caller 404)
	case want > hint:
		return http.StatusNotFound, "no such part yet: it is not the next one"
	}
	_, status, msg = playlist(fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, parts))
	return status, msg
}

// liveEdge reads an LL-HLS media playlist: the media sequence number of
// the segment being written, how many of its parts are listed, and the
// number of the preload-hinted part.
func liveEdge(pl string) (msn uint64, parts int, hint uint64, ok bool) {
	var seq, segs uint64
	haveSeq, haveHint := false, false
	for _, l := range strings.Split(pl, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			seq, haveSeq = v, err == nil
		case strings.HasPrefix(l, "#EXTINF:"):
			segs++
			parts = 0
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			parts++
		case strings.HasPrefix(l, "#EXT-X-PRELOAD-HINT:"):
			_, u, _ := strings.Cut(l, `URI="`)
			u, _, _ = strings.Cut(u, ".mp4")
			i := strings.LastIndex(u, "_part")
			if i < 0 {
				return 0, 0, 0, false
			}
			v, err := strconv.ParseUint(u[i+len("_part"):], 10, 64)
			hint, haveHint = v, err == nil
		}
	}
	return seq + segs, parts, hint, haveSeq && haveHint
}

// session returns the reader session of this client on key, opening one
// (a hub reader) when it is new or its reader follows a stream that ended
// since (the publisher came back after the reconnect grace: a new stream,
// whose readers and reader limit must count this client).
func (s *Server) session(r *http.Request, key string, cfg *Config) (*session, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	id := key + "\x00" + host
	if cfg.TokenSessions {
		id += "\x00" + r.URL.Query().Get(auth.QueryParam)
	}
	now := time.Now().UnixNano()
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss != nil && ss.rd.Stream() == s.hub.Stream(key) {
		ss.last.Store(now)
		return ss, nil
	}
	rd, err := s.hub.Subscribe(s.ctx, key, media.SubscribeOptions{
		Format: media.FormatFLV,
		Info:   media.ReaderInfo{Protocol: "hls", Remote: host},
	})
	if err != nil {
		return nil, err
	}
	ss = &session{rd: rd}
	ss.last.Store(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sessions[id]
	if old != nil && old.rd.Stream() == rd.Stream() { // a concurrent request won
		rd.Close()
		old.last.Store(now)
		return old, nil
	}
	if s.ctx.Err() != nil {
		rd.Close()
		return nil, media.ErrHubClosed
	}
	if old != nil {
		old.rd.Close() // of the stream that ended
	}
	s.sessions[id] = ss
	s.log.Info("hls reader", "stream", key, "remote", host)
	return ss, nil
}

type countWriter struct {
	http.ResponseWriter
	wrote bool
	n     int
}

func (c *countWriter) WriteHeader(code int) {
	c.wrote = true
	c.Header().Set("Access-Control-Allow-Origin", "*")
	c.ResponseWriter.WriteHeader(code)
}

func (c *countWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += n
	return n, err
}

type bufWriter struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (b *bufWriter) Header() http.Header { return b.h }

func (b *bufWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}
