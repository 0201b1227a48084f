package client

// The control socket: a unix socket in the agent's runtime directory
// that only local root (or the service user) can open. `relaymesh reload`
// (systemd's ExecReload) asks the agent to reload over it and gets the
// verdict.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

const (
	// ControlSocket is the control socket's name in the runtime directory.
	ControlSocket = "control.sock"
	// DefaultRuntimeDir is what the packaged unit's RuntimeDirectory=
	// makes.
	DefaultRuntimeDir = "/run/relaymesh"
)

// RuntimeDir is the agent's runtime directory as a client finds it: the
// first entry of $RUNTIME_DIRECTORY (systemd sets it for the unit's
// commands), else DefaultRuntimeDir.
func RuntimeDir() string {
	if first, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); first != "" {
		return first
	}
	return DefaultRuntimeDir
}

// ReloadVerdict is the control socket's answer to POST /reload. The agent
// writes this struct.
type ReloadVerdict struct {
	Reloaded bool     `json:"reloaded"`
	Problems []string `json:"problems,omitempty"` // why it was refused, one per line
}

// Reload asks the agent whose runtime directory is dir to reload its
// config and waits for its verdict (bound the wait with ctx). A refused
// reload is a verdict, not an error: Reloaded is false and Problems says
// why. No agent on the socket is an *UnreachableError.
func Reload(ctx context.Context, dir string) (ReloadVerdict, error) {
	path := filepath.Join(dir, ControlSocket)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://relaymesh/reload", nil)
	if err != nil {
		return ReloadVerdict{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ReloadVerdict{}, &UnreachableError{Addr: path, Err: err}
	}
	defer resp.Body.Close()
	var v ReloadVerdict
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return ReloadVerdict{}, fmt.Errorf("bad answer from %s (HTTP %d): %v", path, resp.StatusCode, err)
	}
	return v, nil
}
