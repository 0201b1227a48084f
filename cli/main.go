// Package cli is the relaymesh command line: one file per subcommand.
// It reaches a running agent only through package client (the HTTP API,
// and the control socket for reload).
package cli

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/relaymesh/relaymesh/agent"
)

const usage = `relaymesh — live-video transport agent (edge, live center, or both)

Usage:
  relaymesh run     [-c FILE]   run the agent (built-in standalone default without -c)
  relaymesh check   [-c FILE] [--user NAME]   validate a config like nginx -t: "ok" or every problem;
                                as root also whether the service user can read its files
  relaymesh reload  [--runtime-dir DIR]   make the running agent reload its config;
                                exits 1 with the reason when it refuses (systemctl reload)
  relaymesh status  [--json] [--api URL] [--token-file F]   nodes, streams and links of a running agent
  relaymesh locate  [--api URL] [--token-file F] [--client ADDR] APP/NAME   best edge to publish to
  relaymesh sign    [-c FILE | --key FILE] [--action publish|play] [--ttl 1h] APP/NAME
                                print APP/NAME?token=... (a signed URL's path and query)
  relaymesh flows|relays|tasks [--api URL] [--token-file F] [--json] list|get|create|update|delete|start|stop|restart ...
                                manage flows, scheduled relays and pseudo-live tasks over the API
  relaymesh cleanup [-c FILE] [--runtime-dir DIR]   remove the traffic-control state the agent
                                installed, from its record in DIR/qos.json (else the config)
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

// Main runs the command line and returns the exit code: 0 done, 1 failed,
// 2 a usage error.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
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
	case "reload":
		return cmdReload(rest, stdout, stderr)
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
		fmt.Fprintf(stdout, "relaymesh %s %s %s/%s\n", agent.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "relaymesh: unknown command %q; see relaymesh help\n", cmd)
	return 2
}
