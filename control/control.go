// Package control serves the agent's control socket: `relaymesh reload`
// (systemd's ExecReload) asks the running agent to reload over a unix
// socket in its runtime directory and waits for the verdict, so a refused
// reload fails the command with the reason instead of a SIGHUP that
// always "succeeds". The client side is client.Reload.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
)

// ErrStopping is what a ReloadFunc returns when the agent is shutting
// down and reloads no more.
var ErrStopping = errors.New("the agent is shutting down")

// ReloadFunc runs one reload and returns its verdict: nil when applied,
// the reason when refused (config.Problems splits it into lines),
// ErrStopping, or ctx's error when ctx ended first.
type ReloadFunc func(ctx context.Context) error

// Server serves the control socket.
type Server struct {
	reload ReloadFunc
	ln     net.Listener
	http   *http.Server
}

// New binds dir/control.sock. A socket left by a dead agent is replaced;
// one that answers means another agent runs with this directory, which is
// refused.
func New(dir string, reload ReloadFunc) (*Server, error) {
	path := filepath.Join(dir, client.ControlSocket)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another relaymesh agent answers there; stop it or give this one its own RUNTIME_DIRECTORY", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: remove the stale one: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket %s (RUNTIME_DIRECTORY): %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	s := &Server{reload: reload, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reload", s.serveReload)
	// the one request carries no body and a few headers; a client that
	// holds a connection idle, or sends headers slowly or in bulk, is cut
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	return s, nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("control socket: %w", err)
}

// Close stops serving and removes the socket file. Idempotent.
func (s *Server) Close() error {
	err := s.http.Close()
	// the listener too: http.Server closes only listeners it served
	if cerr := s.ln.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// serveReload runs the reload and answers with its verdict
// (client.ReloadVerdict); a client that went away gets no answer.
func (s *Server) serveReload(w http.ResponseWriter, r *http.Request) {
	answer := func(code int, v client.ReloadVerdict) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	err := s.reload(r.Context())
	switch {
	case r.Context().Err() != nil:
	case errors.Is(err, ErrStopping):
		answer(http.StatusServiceUnavailable, client.ReloadVerdict{Problems: []string{ErrStopping.Error()}})
	case err != nil:
		answer(http.StatusConflict, client.ReloadVerdict{Problems: config.Problems(err)})
	default:
		answer(http.StatusOK, client.ReloadVerdict{Reloaded: true})
	}
}
