// Package listeners is the node's set of listeners that a reload may move
// to another address: RTMP, HTTP (HTTP-FLV and what rides on it), SRT and
// the JSON API. It builds each from the config, binds a changed one's new
// socket before the old one closes, and gives a consistent view of the
// servers in force to the API, the metrics and the drain.
package listeners

import (
	"context"
	"log/slog"
	"net/http"
	"reflect"
	"sync"

	"github.com/relaymesh/relaymesh/api"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/netutil"
)

// Names of the listeners in a Set, as config.Diff lists them.
const (
	RTMP = "rtmp"
	HTTP = "http"
	SRT  = "srt"
	API  = "api"
)

// Deps are what the listeners take from the node.
type Deps struct {
	Hub *media.Hub
	Log *slog.Logger
	// Authorize gates every publish and play.
	Authorize media.Authorizer
	// Routes serves the HTTP listener's paths other than /APP/NAME.flv.
	Routes func() http.Handler
	// SRTStreamOptions are the per-stream SRT options of flows' SRT
	// listener sources and outputs.
	SRTStreamOptions func(action, key string) (srt.StreamOptions, bool)
	// SRTBudget is the node's SRT receive memory (srt.max_receive_memory),
	// which the SRT listener shares with the backbone's.
	SRTBudget *srt.Budget
	// NewAPI binds the JSON API on listen.
	NewAPI func(listen string) (*api.Server, error)
	// Start runs a bound server under the node's Run and closes it with
	// the node (close is its Close).
	Start func(run func(context.Context) error, close func() error)
}

// Servers are the listeners in force; nil where one is off.
type Servers struct {
	RTMP    *rtmp.Server
	HTTPFLV *httpflv.Server
	SRT     *srt.Server
	API     *api.Server
}

// Set is the node's movable listeners.
type Set struct {
	d  Deps
	mu sync.Mutex // guards the pointers in s, which a reload swaps
	s  Servers
	// spareSRT is an SRT listener a refused reload bound on spareSRTAddr
	// and never ran (srtFor); only the reload touches it.
	spareSRT     *srt.Server
	spareSRTAddr string
}

// New returns an empty set; Open binds its listeners.
func New(d Deps) *Set { return &Set{d: d} }

// Servers returns the listeners in force.
func (s *Set) Servers() Servers {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}

// Addr returns the bound address of the named listener, "" when it is off.
func (s *Set) Addr(name string) string {
	l := s.Servers()
	switch {
	case name == RTMP && l.RTMP != nil:
		return l.RTMP.Addr().String()
	case name == HTTP && l.HTTPFLV != nil:
		return l.HTTPFLV.Addr().String()
	case name == SRT && l.SRT != nil:
		return l.SRT.Addr().String()
	case name == API && l.API != nil:
		return l.API.Addr().String()
	}
	return ""
}

// OpenConns counts the open media connections per listener.
func (s *Set) OpenConns() (rtmpN, flvN, srtN int) {
	l := s.Servers()
	if l.RTMP != nil {
		rtmpN = l.RTMP.ConnCount()
	}
	if l.HTTPFLV != nil {
		flvN = l.HTTPFLV.ConnCount()
	}
	if l.SRT != nil {
		srtN = len(l.SRT.Stats())
	}
	return rtmpN, flvN, srtN
}

// SRTStats returns the per-connection SRT statistics of a stream.
func (s *Set) SRTStats(key string) []srt.ConnStats {
	srv := s.Servers().SRT
	if srv == nil {
		return nil
	}
	var out []srt.ConnStats
	for _, st := range srv.Stats() {
		if st.Stream == key {
			out = append(out, st)
		}
	}
	return out
}

// Open binds the named listener as cfg says (nothing when its address is
// "") and starts it through Deps.Start.
func (s *Set) Open(name string, cfg *config.Config) error {
	m, err := s.bind(name, cfg)
	if err != nil || m.run == nil {
		return err
	}
	s.d.Start(m.run, m.closeRun)
	s.mu.Lock()
	m.swap()
	s.mu.Unlock()
	return nil
}

// move is one listener bound on its new address, not yet in force.
type move struct {
	name, from string
	run        func(context.Context) error    // nil when the listener is turned off
	close      func() error                   // on abort
	closeRun   func() error                   // on shutdown, once it runs
	swap       func() (closeOld func() error) // installs the new server (s.mu held), returns the old one's Close
}

// bind builds the named listener from cfg; a nil run means it is off.
func (s *Set) bind(name string, cfg *config.Config) (move, error) {
	m := move{name: name, from: s.Addr(name)}
	var err error
	switch name {
	case RTMP:
		var srv *rtmp.Server
		if cfg.RTMP.Listen != "" {
			if srv, err = rtmp.New(s.rtmpConfig(cfg), s.d.Hub, s.d.Log); err == nil {
				m.run, m.close, m.closeRun = srv.Run, srv.Close, srv.Close
			}
			err = netutil.ListenError("rtmp.listen", cfg.RTMP.Listen, err)
		}
		m.swap = func() func() error { old := s.s.RTMP; s.s.RTMP = srv; return closerOf(old) }
	case HTTP:
		var srv *httpflv.Server
		if cfg.HTTP.Listen != "" {
			if srv, err = httpflv.New(s.httpflvConfig(cfg), s.d.Hub, s.d.Log); err == nil {
				m.run, m.close, m.closeRun = srv.Run, srv.Close, srv.Close
			}
			err = netutil.ListenError("http.listen", cfg.HTTP.Listen, err)
		}
		m.swap = func() func() error { old := s.s.HTTPFLV; s.s.HTTPFLV = srv; return closerOf(old) }
	case SRT:
		var srv *srt.Server
		if cfg.SRT.Listen != "" {
			if srv, err = s.srtFor(s.srtConfig(cfg)); err == nil {
				m.run, m.close, m.closeRun = srv.Run, func() error { s.keepSpareSRT(srv, cfg.SRT.Listen); return nil }, srv.Close
			}
			err = netutil.ListenError("srt.listen", cfg.SRT.Listen, err)
		}
		m.swap = func() func() error { old := s.s.SRT; s.s.SRT = srv; return closerOf(old) }
	case API:
		var srv *api.Server
		if cfg.API.Listen != "" {
			if srv, err = s.d.NewAPI(cfg.API.Listen); err == nil {
				m.run, m.close, m.closeRun = srv.Run, srv.Close, srv.Close
			}
			err = netutil.ListenError("api.listen", cfg.API.Listen, err)
		}
		m.swap = func() func() error { old := s.s.API; s.s.API = srv; return closerOf(old) }
	}
	return m, err
}

// Prepare binds a new socket for every listener in changed (names as in
// config.Diff's Listeners; others are skipped) whose address moves to the
// one in next: an address in use refuses with nothing changed. commit
// starts each new server and only then closes the old one; abort closes
// the new sockets. Connections on an old listener end with it; every
// other listener and connection is untouched.
func (s *Set) Prepare(next *config.Config, changed []string) (commit, abort func(), err error) {
	var moves []move
	abort = func() {
		for _, m := range moves {
			if m.close != nil {
				m.close()
			}
		}
	}
	for _, name := range changed {
		switch name {
		case RTMP, HTTP, SRT, API:
		default:
			continue
		}
		m, err := s.bind(name, next)
		if err != nil {
			abort()
			return nil, nil, err
		}
		moves = append(moves, m)
	}
	commit = func() {
		for _, m := range moves {
			if m.run != nil {
				s.d.Start(m.run, m.closeRun)
			}
			s.mu.Lock()
			closeOld := m.swap()
			s.mu.Unlock()
			if closeOld != nil {
				closeOld()
			}
			s.d.Log.Info("listener moved", "listener", m.name, "from", m.from, "to", s.Addr(m.name))
		}
	}
	return commit, abort, nil
}

// PrepareSettings checks the settings the running RTMP, HTTP-FLV and SRT
// servers take without a new socket (timeouts, limits, SRT latency,
// passphrases, [[srt_stream]], srt.max_connections); commit puts them in
// force. A listener that moves (Prepare) is built from next already.
func (s *Set) PrepareSettings(old, next *config.Config) (commit func(), err error) {
	var srtCommit func()
	if srv := s.Servers().SRT; srv != nil && next.SRT.Listen == old.SRT.Listen {
		if srtCommit, err = srv.Prepare(s.srtConfig(next)); err != nil {
			return nil, err
		}
	}
	return func() {
		if srtCommit != nil {
			srtCommit()
		}
		if l := s.Servers(); l.RTMP != nil {
			l.RTMP.SetConfig(s.rtmpConfig(next))
		}
		if l := s.Servers(); l.HTTPFLV != nil {
			l.HTTPFLV.SetConfig(s.httpflvConfig(next))
		}
	}, nil
}

// srtFor returns an SRT server bound to cfg.Listen: the spare one a
// refused reload left on that address, else a new one. libsrt releases
// the UDP port of a closed listener only later, in its own thread, so
// closing a prepared SRT listener on a refusal would leave its address in
// use for the next reload.
func (s *Set) srtFor(cfg srt.Config) (*srt.Server, error) {
	if sp := s.spareSRT; sp != nil {
		s.spareSRT = nil
		if s.spareSRTAddr == cfg.Listen && sp.SetConfig(cfg) == nil {
			return sp, nil
		}
		sp.Close()
	}
	return srt.New(cfg, s.d.Hub, s.d.Log)
}

// keepSpareSRT keeps srv, prepared for addr by a refused reload and never
// run, for the next reload's srtFor (closed by Close).
func (s *Set) keepSpareSRT(srv *srt.Server, addr string) {
	if s.spareSRT != nil {
		s.spareSRT.Close()
	}
	s.spareSRT, s.spareSRTAddr = srv, addr
}

// Close closes the spare SRT listener a refused reload left; the servers
// in force are closed by what Deps.Start registered. It is idempotent.
func (s *Set) Close() {
	if s.spareSRT != nil {
		s.spareSRT.Close()
		s.spareSRT = nil
	}
}

// closerOf returns c.Close, or nil when c is a nil pointer.
func closerOf[T interface{ Close() error }](c T) func() error {
	if reflect.ValueOf(c).IsNil() {
		return nil
	}
	return c.Close
}
