package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaymesh/relaymesh/client"
)

const objectsUsage = `usage: relaymesh %[1]s [--api URL] [--token-file FILE] [--json] COMMAND
  list [KEY=VALUE...]  the %[1]s with their states (tasks: filtered by id, name, destination)
  get ID               one of them as JSON
  create FILE|-        create from a JSON file (or stdin)
  update ID FILE|-     replace (as its state allows)
  delete ID
%[2]s`

// objectsWait bounds one call: starting a task probes its playlist.
const objectsWait = 3 * time.Minute

// objectActions are the actions of each kind beyond create, update and
// delete.
var objectActions = map[string][]string{"flows": {"start", "stop"}, "relays": nil, "tasks": {"start", "stop", "restart"}}

// cmdObjects is `relaymesh flows|relays|tasks ...`. Files are sent to the
// agent as they are and its answers printed as it wrote them; list
// prints a table of the typed views.
func cmdObjects(kind string, args []string, stdout, stderr io.Writer) int {
	acts, ok := objectActions[kind]
	if !ok {
		fmt.Fprintf(stderr, "relaymesh: unknown object kind %q\n", kind)
		return 2
	}
	extra := ""
	for _, a := range acts {
		extra += fmt.Sprintf("  %-20s %s it\n", a+" ID", a)
	}
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, objectsUsage, kind, extra) }
	af := addAPIFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	c, err := af.client(stderr)
	if err != nil {
		return 1
	}
	docs, err := c.Documents(kind)
	if err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), objectsWait)
	defer cancel()
	need := func(n int) bool {
		if len(rest) != n {
			fs.Usage()
			return false
		}
		return true
	}
	var out json.RawMessage
	switch cmd := rest[0]; {
	case cmd == "list":
		q := url.Values{}
		for _, kv := range rest[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(stderr, "relaymesh %s list: %q is not KEY=VALUE (e.g. name=\"Night loop\")\n", kind, kv)
				return 2
			}
			q.Add(k, v)
		}
		if !*asJSON {
			if err := printObjects(ctx, c, kind, q, stdout); err != nil {
				return apiFailed(stderr, err, false)
			}
			return 0
		}
		var list []json.RawMessage
		if list, err = docs.List(ctx, q); err == nil {
			out, err = json.Marshal(map[string][]json.RawMessage{kind: list})
		}
	case cmd == "get" && need(2):
		out, err = docs.Get(ctx, rest[1])
	case cmd == "create" && need(2):
		var body []byte
		if body, err = readArg(rest[1]); err == nil {
			out, err = docs.Create(ctx, body)
		}
	case cmd == "update" && need(3):
		var body []byte
		if body, err = readArg(rest[2]); err == nil {
			out, err = docs.Update(ctx, rest[1], body)
		}
	case cmd == "delete" && need(2):
		if err = docs.Delete(ctx, rest[1]); err == nil {
			fmt.Fprintf(stdout, "deleted %s\n", rest[1])
			return 0
		}
	case slices.Contains(acts, cmd) && need(2):
		out, err = docs.Do(ctx, rest[1], cmd)
	case cmd == "get" || cmd == "create" || cmd == "update" || cmd == "delete" || slices.Contains(acts, cmd):
		return 2 // wrong argument count: usage printed
	default:
		fmt.Fprintf(stderr, "relaymesh %s: unknown command %q\n", kind, cmd)
		fs.Usage()
		return 2
	}
	if err != nil {
		return apiFailed(stderr, err, false)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		pretty.WriteByte('\n')
		stdout.Write(pretty.Bytes())
	}
	return 0
}

func readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	}
	return os.ReadFile(name)
}

// dash is s, or "-" for an absent value.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printObjects prints the objects of kind as a table.
func printObjects(ctx context.Context, c *client.Client, kind string, q url.Values, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	switch kind {
	case "flows":
		list, err := c.Flows().List(ctx, q)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tSTATE\tSOURCE\tOUTPUTS\tORIGIN\tREASON")
		for _, f := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", f.ID, f.State, f.Source.Type, len(f.Outputs), f.Origin, dash(f.Reason))
		}
	case "relays":
		list, err := c.Relays().List(ctx, q)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tSTATE\tPATTERN\tURL\tWINDOW\tORIGIN\tLAST ERROR")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s..%s\t%s\t%s\n", r.ID, r.State, r.Pattern, r.URL,
				r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano), r.Origin, dash(r.LastError))
		}
	case "tasks":
		list, err := c.Tasks().List(ctx, q)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tNAME\tSTATE\tSOURCE\tDESTINATION\tITEM\tORIGIN\tREASON")
		for _, t := range list {
			what := t.Source.URL
			if len(t.Source.Playlist) > 0 {
				what = fmt.Sprintf("playlist of %d", len(t.Source.Playlist))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, dash(t.Name), t.State, dash(what), t.Destination.URL, t.Item, t.Origin, dash(t.Reason))
		}
	}
	return tw.Flush()
}
