package agent

// The agent's side of the control socket (package control): a reload
// asked for there runs in Run's loop, the one place reloads happen,
// SIGHUP included.

import (
	"context"

	"github.com/relaymesh/relaymesh/control"
)

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
