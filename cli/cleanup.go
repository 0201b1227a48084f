package cli

import (
	"flag"
	"fmt"
	"io"

	"github.com/relaymesh/relaymesh/agent"
	"github.com/relaymesh/relaymesh/client"
)

// cmdCleanup is `relaymesh cleanup` (the unit's ExecStopPost): remove the
// tc trees the agent recorded in its runtime directory, else the one of
// the config's qos.interface.
func cmdCleanup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var path string
	fs.StringVar(&path, "c", "", "config file (used only when there is no record)")
	fs.StringVar(&path, "config", "", "config file (used only when there is no record)")
	dir := fs.String("runtime-dir", client.RuntimeDir(), "the agent's runtime directory (holds "+agent.QoSRecordFile+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relaymesh cleanup: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ok := agent.Cleanup(*dir, path, func(problem bool, line string) {
		w := stdout
		if problem {
			w = stderr
		}
		fmt.Fprintf(w, "relaymesh cleanup: %s\n", line)
	})
	if !ok {
		return 1
	}
	return 0
}
