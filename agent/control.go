package agent

// The control socket: `relaymesh reload` (systemd's ExecReload) asks the
// running agent to reload over a unix socket in its runtime directory and
// waits for the verdict, so a refused reload fails the command with the
// reason instead of a SIGHUP that always "succeeds".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
)

const (
	// controlSocket is the socket's name in the runtime directory.
	controlSocket = client.ControlSocket
)

// agentRuntimeDir is where the agent keeps what lives as long as it runs
// (the control socket, the record of its tc state): the first entry of
// $RUNTIME_DIRECTORY, which systemd sets from RuntimeDirectory=; "" when
// it is not set, and then the agent has neither.
func agentRuntimeDir() string {
	first, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return first
}

// controlServer serves the control socket.
type controlServer struct {
	a    *Agent
	ln   net.Listener
	http *http.Server
}

// newControl binds dir/control.sock. A socket left by a dead agent is
// replaced; one that answers means another agent runs with this
// directory, which is refused.
func newControl(a *Agent, dir string) (*controlServer, error) {
	path := filepath.Join(dir, controlSocket)
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
	s := &controlServer{a: a, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reload", s.reload)
	// the one request carries no body and a few headers; a client that
	// holds a connection idle, or sends headers slowly or in bulk, is cut
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10}
	return s, nil
}

func (s *controlServer) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("control socket: %w", err)
}

// Close stops serving and removes the socket file. Idempotent.
func (s *controlServer) Close() error {
	err := s.http.Close()
	// the listener too: http.Server closes only listeners it served
	if cerr := s.ln.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// reloadVerdict is the answer to POST /reload.
type reloadVerdict = client.ReloadVerdict

// reload hands the request to Run's loop (the one place reloads happen,
// SIGHUP included) and answers with its verdict.
func (s *controlServer) reload(w http.ResponseWriter, r *http.Request) {
	reply := make(chan error, 1)
	answer := func(code int, v reloadVerdict) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	select {
	case s.a.reloads <- reply:
	case <-s.a.stopping:
		answer(http.StatusServiceUnavailable, reloadVerdict{Problems: []string{"the agent is shutting down"}})
		return
	case <-r.Context().Done():
		return
	}
	select {
	case err := <-reply:
		if err != nil {
			answer(http.StatusConflict, reloadVerdict{Problems: config.Problems(err)})
			return
		}
		answer(http.StatusOK, reloadVerdict{Reloaded: true})
	case <-r.Context().Done():
	}
}
