package agent

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const objectsUsage = `usage: relaymesh %[1]s [--api URL] [--token-file FILE] [--json] COMMAND
  list [KEY=VALUE...]  the %[1]s with their states (tasks: filtered by id, name, destination)
  get ID               one of them as JSON
  create FILE|-        create from a JSON file (or stdin)
  update ID FILE|-     replace (as its state allows)
  delete ID
%[2]s`

// cmdObjects runs `relaymesh flows|relays|tasks ...` over the JSON API.
func cmdObjects(kind string, args []string, stdout, stderr io.Writer) int {
	actions := map[string][]string{"flows": {"start", "stop"}, "relays": nil, "tasks": {"start", "stop", "restart"}}
	acts, ok := actions[kind]
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
	api := fs.String("api", defaultAPI, "agent API base URL")
	tokenFile := fs.String("token-file", "", tokenFileUsage)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	token, err := cliToken(*tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	c := &objClient{base: strings.TrimRight(*api, "/"), token: token}
	base := "/v1/" + kind
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
		path := base
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		err = c.do("GET", path, nil, &out)
		if err == nil && !*asJSON {
			return printObjects(kind, out, stdout, stderr)
		}
	case cmd == "get" && need(2):
		err = c.do("GET", base+"/"+rest[1], nil, &out)
	case cmd == "create" && need(2):
		var body []byte
		if body, err = readArg(rest[1]); err == nil {
			err = c.do("POST", base, body, &out)
		}
	case cmd == "update" && need(3):
		var body []byte
		if body, err = readArg(rest[2]); err == nil {
			err = c.do("PUT", base+"/"+rest[1], body, &out)
		}
	case cmd == "delete" && need(2):
		err = c.do("DELETE", base+"/"+rest[1], nil, nil)
		if err == nil {
			fmt.Fprintf(stdout, "deleted %s\n", rest[1])
			return 0
		}
	case contains(acts, cmd) && need(2):
		err = c.do("POST", base+"/"+rest[1]+"/"+cmd, nil, &out)
	case cmd == "get" || cmd == "create" || cmd == "update" || cmd == "delete" || contains(acts, cmd):
		return 2 // wrong argument count: usage printed
	default:
		fmt.Fprintf(stderr, "relaymesh %s: unknown command %q\n", kind, cmd)
		fs.Usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		pretty.WriteByte('\n')
		stdout.Write(pretty.Bytes())
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	}
	return os.ReadFile(name)
}

type objClient struct{ base, token string }

func (c *objClient) do(method, path string, body []byte, out *json.RawMessage) error {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{Timeout: 3 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the relaymesh API at %s (is the agent running? see --api): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			if e.Field != "" {
				return fmt.Errorf("%s %s: %s: %s (HTTP %d)", method, path, e.Field, e.Message, resp.StatusCode)
			}
			return fmt.Errorf("%s %s: %s (HTTP %d)", method, path, e.Message, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		*out = data
	}
	return nil
}

func printObjects(kind string, raw json.RawMessage, stdout, stderr io.Writer) int {
	var all map[string][]map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	switch kind {
	case "flows":
		fmt.Fprintln(tw, "ID\tSTATE\tSOURCE\tOUTPUTS\tORIGIN\tREASON")
	case "relays":
		fmt.Fprintln(tw, "ID\tSTATE\tPATTERN\tURL\tWINDOW\tORIGIN\tLAST ERROR")
	case "tasks":
		fmt.Fprintln(tw, "ID\tNAME\tSTATE\tSOURCE\tDESTINATION\tITEM\tORIGIN\tREASON")
	}
	for _, o := range all[kind] {
		g := func(k string) any {
			if v, ok := o[k]; ok && v != nil {
				return v
			}
			return "-"
		}
		switch kind {
		case "flows":
			src, _ := o["source"].(map[string]any)
			outs, _ := o["outputs"].([]any)
			fmt.Fprintf(tw, "%v\t%v\t%v\t%d\t%v\t%v\n", g("id"), g("state"), src["type"], len(outs), g("origin"), g("reason"))
		case "relays":
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v..%v\t%v\t%v\n", g("id"), g("state"), g("pattern"), g("url"), g("start_time"), g("end_time"), g("origin"), g("last_error"))
		case "tasks":
			src, _ := o["source"].(map[string]any)
			dst, _ := o["destination"].(map[string]any)
			what := src["url"]
			if pl, ok := src["playlist"].([]any); ok {
				what = fmt.Sprintf("playlist of %d", len(pl))
			}
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\n", g("id"), g("name"), g("state"), what, dst["url"], g("item"), g("origin"), g("reason"))
		}
	}
	tw.Flush()
	return 0
}
