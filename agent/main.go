package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Version is set at build time with -ldflags "-X .../agent.Version=...".
var Version = "dev"

const usage = `relaymesh — live-video transport agent (edge, live center, or both)

Usage:
  relaymesh run     [-c FILE]   run the agent (built-in standalone default without -c)
  relaymesh check   [-c FILE]   validate a config like nginx -t: "ok" or every problem
  relaymesh status  [--json] [--api URL] [--token-file F]   nodes, streams and links of a running agent
  relaymesh locate  [--api URL] [--token-file F] [--client ADDR] APP/NAME   best edge to publish to
  relaymesh sign    [-c FILE | --key FILE] [--action publish|play] [--ttl 1h] APP/NAME
                                print APP/NAME?token=... (a signed URL's path and query)
  relaymesh flows|relays|tasks [--api URL] [--token-file F] [--json] list|get|create|update|delete|start|stop|restart ...
                                manage flows, scheduled relays and pseudo-live tasks over the API
  relaymesh cleanup [-c FILE]   remove the traffic-control state the agent installed
  relaymesh version             print the version
  relaymesh help                this text

Config: /etc/relaymesh/relaymesh.toml (plus conf.d/*.toml drop-ins) when it exists
and -c is not given; otherwise the built-in standalone default: RTMP :1935,
HTTP-FLV :8080, SRT :8890, API and /metrics on 127.0.0.1:9997.

Publish:  ffmpeg -re -i in.mp4 -c copy -f flv rtmp://HOST:1935/live/NAME
          ffmpeg -re -i in.mp4 -c copy -f mpegts 'srt://HOST:8890?streamid=publish:live/NAME'
Play:     ffplay rtmp://HOST:1935/live/NAME
          ffplay http://HOST:8080/live/NAME.flv
          ffplay 'srt://HOST:8890?streamid=read:live/NAME'
`

// DefaultConfigPath is read by run and check when -c is not given.
const DefaultConfigPath = "/etc/relaymesh/relaymesh.toml"

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	return main(args, os.Stdout, os.Stderr)
}

func main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "locate":
		return cmdLocate(rest, stdout, stderr)
	case "cleanup":
		return cmdCleanup(rest, stdout, stderr)
	case "sign":
		return cmdSign(rest, stdout, stderr)
	case "flows", "relays", "tasks":
		return cmdObjects(cmd, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "relaymesh %s %s %s/%s\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "relaymesh: unknown command %q; see relaymesh help\n", cmd)
	return 2
}

// configFlag parses -c for run, check and cleanup.
func configFlag(name string, args []string, stderr io.Writer) (path string, explicit bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&path, "c", "", "config file")
	fs.StringVar(&path, "config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return "", false, err
	}
	if fs.NArg() > 0 {
		return "", false, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	if path != "" {
		return path, true, nil
	}
	if _, err := os.Stat(DefaultConfigPath); err == nil {
		return DefaultConfigPath, false, nil
	}
	return "", false, nil
}

// loadConfig loads path, or the built-in default when path is empty.
func loadConfig(path string) (*Config, error) {
	if path == "" {
		cfg := Default()
		return cfg, cfg.Validate()
	}
	return Load(path)
}

// loadChecked parses -c, loads the config and checks its files, as run
// and check do; code is the exit code when it fails.
func loadChecked(name string, args []string, stderr io.Writer) (cfg *Config, path string, code int, err error) {
	path, _, err = configFlag(name, args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, "", 2, err
	}
	cfg, err = loadConfig(path)
	if err == nil {
		err = cfg.CheckFiles()
	}
	return cfg, path, 1, err
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	cfg, path, code, err := loadChecked("check", args, stderr)
	if code == 2 {
		return code
	}
	name := path
	if name == "" {
		name = "built-in default"
	}
	if err != nil {
		printProblems(stderr, name, err)
		return 1
	}
	for _, w := range checkWarnings(cfg) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "relaymesh: %s: ok\n", name)
	return 0
}

// printProblems prints every problem of a config, one per line.
func printProblems(w io.Writer, name string, err error) {
	if name == "" {
		name = "built-in default"
	}
	fmt.Fprintf(w, "relaymesh: %s: config has problems:\n", name)
	for _, e := range flattenErrors(err) {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

// flattenErrors unpacks errors.Join trees into lines.
func flattenErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}

func cmdRun(args []string, stderr io.Writer) int {
	cfg, path, code, err := loadChecked("run", args, stderr)
	if code == 2 {
		return code
	}
	if err != nil {
		printProblems(stderr, path, err)
		return 1
	}
	a, err := New(cfg, path, os.Stdout)
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
