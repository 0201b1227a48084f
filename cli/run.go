package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/relaymesh/relaymesh/agent"
	"github.com/relaymesh/relaymesh/config"
)

// cmdRun is `relaymesh run`: run the agent until SIGTERM or SIGINT.
func cmdRun(args []string, stderr io.Writer) int {
	cfg, path, code, err := loadChecked("run", args, stderr)
	if code == 2 {
		return code
	}
	if err != nil {
		// one self-contained line per problem: the journal shows them so
		name := configName(path)
		for _, e := range config.Problems(err) {
			if !strings.HasPrefix(e, name) {
				e = name + ": " + e
			}
			fmt.Fprintf(stderr, "relaymesh: %s\n", e)
		}
		return 1
	}
	a, err := agent.New(cfg, path, os.Stdout)
	if err != nil {
		fmt.Fprintf(stderr, "relaymesh: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "relaymesh: %v\n", err)
		return 1
	}
	return 0
}
