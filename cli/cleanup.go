package cli

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/netutil/tcrecord"
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
	dir := fs.String("runtime-dir", client.RuntimeDir(), "the agent's runtime directory (holds "+tcrecord.File+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relaymesh cleanup: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	// without a record: the config's qos.interface ("" : config.DefaultPath
	// when it exists)
	fallback := func() (string, error) {
		if path == "" {
			if _, err := os.Stat(config.DefaultPath); err == nil {
				path = config.DefaultPath
			}
		}
		cfg, err := config.LoadFile(path)
		if err != nil {
			return "", err
		}
		return cfg.QoS.Interface, nil
	}
	ok := tcrecord.Cleanup(*dir, fallback, func(problem bool, line string) {
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
