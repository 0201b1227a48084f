// Package api is the node's HTTP API: the JSON routes under /v1,
// /healthz, /metrics and pprof, behind one auth middleware (auth.go). It
// reads the node through small interfaces the agent implements (Node and
// Streams here, Cluster and Signer in cluster.go, Objects in objects.go)
// and holds no state of its own beyond the listener.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
)

// Node is the node as a whole: the config in force (tokens, limits,
// locate_signs are read per request, so a reload applies at once) and
// its health.
type Node interface {
	Config() *config.Config
	// Health is the node's status with its details; Status is
	// "stopping" once it drains.
	Health() client.Health
}

// Streams are the live streams of this node.
type Streams interface {
	Streams() []*media.Stream
	Stream(key string) *media.Stream // nil when not live here
	SRTStats(key string) []srt.ConnStats
}

// Deps is what the API serves. Cluster and Metrics may be nil (no
// cluster: its routes answer cluster_disabled; no /metrics).
type Deps struct {
	Log     *slog.Logger
	Node    Node
	Streams Streams
	Cluster Cluster
	Signer  Signer
	Metrics http.Handler
	Objects Objects
}

// Server is the JSON API, /metrics and /healthz on one listener.
type Server struct {
	d    Deps
	ln   net.Listener
	srv  *http.Server
	mux  *http.ServeMux
	once sync.Once
}

// New binds listen and registers every route; Run serves them.
func New(listen string, d Deps) (*Server, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", listen, err)
	}
	s := &Server{d: d, ln: ln, mux: http.NewServeMux()}
	s.srv = &http.Server{
		Handler:           s.authorize(s.mux),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.Log.Handler(), slog.LevelDebug),
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /v1/streams", s.streams)
	s.mux.HandleFunc("GET /v1/streams/{app}/{name}", s.stream)
	s.mux.HandleFunc("GET /v1/streams/{app}/{name}/stats", s.streamStats)
	s.routesCluster()
	if d.Metrics != nil {
		s.mux.Handle("GET /metrics", d.Metrics)
	}
	s.routesObjects()
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path, "")
	})
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends or Close.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving (open requests get a second) and closes the
// listener; it is idempotent and safe on a Server that never ran.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		if err != nil {
			err = s.srv.Close()
		}
		// the listener too: http.Server closes only listeners it served,
		// and a failed start or a refused reload never served this one
		s.ln.Close()
	})
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := s.d.Node.Health()
	switch {
	case h.Status == "stopping":
		writeJSON(w, http.StatusServiceUnavailable, client.Health{Status: "stopping"})
	case s.beyondLoopback() && requestRole(r) < roleRead:
		// liveness for probes that carry no token; details need one
		writeJSON(w, http.StatusOK, client.Health{Status: "ok"})
	default:
		writeJSON(w, http.StatusOK, h)
	}
}
