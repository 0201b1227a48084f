package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/client"
)

// reloadWait bounds how long `relaymesh reload` waits for the verdict:
// under systemd's 90 s default for ExecReload, so the command, not
// systemd's timeout, says what happened.
const reloadWait = 80 * time.Second

// cmdReload is `relaymesh reload`: ask the running agent to reload its
// config and exit 0 when it did, 1 with the reasons when it refused.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("runtime-dir", client.RuntimeDir(), "the agent's runtime directory (holds "+client.ControlSocket+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relaymesh reload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadWait)
	defer cancel()
	v, err := client.Reload(ctx, *dir)
	var ue *client.UnreachableError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "relaymesh reload: no agent answers on %s (is it running? see --runtime-dir): %v\n", ue.Addr, ue.Err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "relaymesh reload: %v\n", err)
		return 1
	case !v.Reloaded:
		fmt.Fprintf(stderr, "relaymesh reload: refused; the old config stays in force: %s\n", strings.Join(v.Problems, "; "))
		return 1
	}
	fmt.Fprintln(stdout, "relaymesh reload: reloaded; the new config is in force")
	return 0
}
