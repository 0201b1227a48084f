package agent

// The agent's side of the control socket (package control): a reload
// asked for there runs in Run's loop, the one place reloads happen,
// SIGHUP included.

import (
	"context"
	"os"
	"strings"

	"github.com/relaymesh/relaymesh/control"
)

// agentRuntimeDir is where the agent keeps what lives as long as it runs
// (the control socket, the record of its tc state): the first entry of
// $RUNTIME_DIRECTORY, which systemd sets from RuntimeDirectory=; "" when
// it is not set, and then the agent has neither.
func agentRuntimeDir() string {
	first, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return first
}

// requestReload hands a reload to Run's loop and waits for its verdict
// (control.ReloadFunc).
func (a *Agent) requestReload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case a.reloads <- reply:
	case <-a.stopping:
		return control.ErrStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
