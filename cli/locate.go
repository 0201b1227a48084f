package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdLocate is `relaymesh locate`: the best edge to publish a stream to,
// as JSON.
func cmdLocate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("locate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAPIFlags(fs)
	from := fs.String("client", "", "the broadcaster's address (default: this machine)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := af.client(stderr)
	if err != nil {
		return 1
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: relaymesh locate [--api URL] [--client ADDR] APP/NAME")
		return 2
	}
	app, name, _ := strings.Cut(fs.Arg(0), "/")
	ctx, cancel := context.WithTimeout(context.Background(), statusWait)
	defer cancel()
	out, err := c.Locate(ctx, app, name, *from)
	if err != nil {
		return apiFailed(stderr, err, true)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}
