package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testagent"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// runCLI runs the command line in the test's process.
func runCLI(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

// TestCLICheck: `relaymesh check` answers like nginx -t: "ok" and exit 0,
// or every problem with file, line and key path and exit 1.
func TestCLICheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("version = 1\n[rtmp]\nlisten = \"nope\"\n[limits]\nread_timeout = 10\nbogus = 1\n"), 0o644)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"shipped standalone", []string{"check", "-c", "../configs/standalone.toml"}, 0, []string{"standalone.toml: ok"}, nil},
		{"built-in default", []string{"check", "-c", ""}, 0, []string{"ok"}, nil},
		{"every problem named", []string{"check", "-c", bad}, 1, nil, []string{
			`bad.toml:3: rtmp.listen: "nope"`,
			`bad.toml:5: limits.read_timeout: want a duration string such as "10s", got integer 10`,
			`bad.toml:6: limits.bogus: unknown key`,
		}},
		{"missing file", []string{"check", "-c", filepath.Join(dir, "nope.toml")}, 1, nil, []string{"nope.toml"}},
		{"unexpected argument", []string{"check", "extra"}, 2, nil, []string{`unexpected argument "extra"`}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
		{"no command", nil, 2, nil, []string{"Usage:"}},
		{"version", []string{"version"}, 0, []string{"relaymesh "}, nil},
		{"help", []string{"help"}, 0, []string{"relaymesh run", "relaymesh check", "relaymesh status", "relaymesh locate", "relaymesh sign"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestCLIStatus: `relaymesh status` prints the live stream in a table and
// as JSON; without an agent it says how to reach one; locate on a node
// outside a cluster says so.
func TestCLIStatus(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if _, errOut, code := runCLI("status", "--api", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "cannot reach the relaymesh API at http://127.0.0.1:1 (is the agent running? see --api)") {
		t.Errorf("status without an agent: exit %d, stderr %q", code, errOut)
	}
	a := testagent.Start(t, "test-node")
	testmedia.Publish(t, context.Background(), testmedia.Source{Realtime: true, Audio: true, Duration: 8 * time.Second},
		fmt.Sprintf("rtmp://127.0.0.1:%d/live/cli", a.RTMP))
	var out string
	testmedia.Eventually(t, 10*time.Second, "status to list live/cli with its codecs", func() bool {
		out, _, _ = runCLI("status", "--api", a.API)
		return strings.Contains(out, "live/cli") && strings.Contains(out, "H264 640x360")
	})
	for _, w := range []string{"node test-node", "role standalone", "STREAM", "AAC", "rtmp 127.0.0.1:"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	js, _, code := runCLI("status", "--api", a.API, "--json")
	if code != 0 || !strings.Contains(js, `"name":"live/cli"`) || !strings.Contains(js, `"node":{"status":"ok","node":"test-node"`) {
		t.Errorf("status --json: exit %d: %s", code, js)
	}
	_, errOut, code := runCLI("locate", "--api", a.API, "live/cli")
	if code != 1 || !strings.Contains(errOut, "/v1/locate?app=live&stream=cli: this node is not in a cluster") {
		t.Errorf("locate on a standalone node: exit %d, stderr %q", code, errOut)
	}
}

// TestObjectsCLI: flows, relays and tasks through the CLI against a
// running agent that needs a token for changes.
func TestObjectsCLI(t *testing.T) {
	a := testagent.Start(t, "objects-test")
	dir := t.TempDir()
	flowFile := filepath.Join(dir, "f.json")
	os.WriteFile(flowFile, []byte(`{"id":"cli","source":{"type":"rtmp-push","stream":"live/cli"},"outputs":[{"name":"p","type":"httpflv"}]}`), 0o600)
	typoFile := filepath.Join(dir, "typo.json")
	os.WriteFile(typoFile, []byte(`{"id":"typo","sorce":{"type":"rtmp-push","stream":"live/typo"}}`), 0o600)
	taskFile := filepath.Join(dir, "t.json")
	os.WriteFile(taskFile, []byte(`{"id":"cli-t","name":"Night loop","callback":"http://127.0.0.1:1/hook","source":{"playlist":["/srv/a.mp4"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"}}`), 0o600)
	tok := a.TokenFile
	cases := []struct {
		name string
		kind string
		args []string
		code int
		out  string
	}{
		{"create without token", "flows", []string{"create", flowFile}, 1, "Bearer"},
		{"create with a misspelt field", "flows", []string{"--token-file", tok, "create", typoFile}, 1, "POST /v1/flows: sorce: unknown field (HTTP 400)"},
		{"create", "flows", []string{"--token-file", tok, "create", flowFile}, 0, `"state": "standby"`},
		{"start", "flows", []string{"--token-file", tok, "start", "cli"}, 0, `"id": "cli"`},
		{"list", "flows", []string{"list"}, 0, "cli "},
		{"list flows by a key", "flows", []string{"list", "name=cli"}, 1, "name: flows take no filters"},
		{"delete running refused", "flows", []string{"--token-file", tok, "delete", "cli"}, 1, "stop it before deleting it"},
		{"stop", "flows", []string{"--token-file", tok, "stop", "cli"}, 0, `"state": "standby"`},
		{"delete", "flows", []string{"--token-file", tok, "delete", "cli"}, 0, "deleted cli"},
		{"get missing", "tasks", []string{"get", "nope"}, 1, "GET /v1/tasks/nope: no task nope (HTTP 404)"},
		{"create task", "tasks", []string{"--token-file", tok, "create", taskFile}, 0, `"name": "Night loop"`},
		{"list tasks by name", "tasks", []string{"list", "name=Night loop"}, 0, "cli-t  Night loop  Stopped"},
		{"list tasks as JSON", "tasks", []string{"--json", "list"}, 0, `"destination": {`},
		{"list tasks by another name", "tasks", []string{"--json", "list", "name=Day"}, 0, `"tasks": []`},
		{"list tasks by an unknown key", "tasks", []string{"list", "colour=red"}, 1, "tasks are filtered by id, name, destination"},
		{"list with a bare word", "tasks", []string{"list", "Night"}, 2, "is not KEY=VALUE"},
		{"relays have no start", "relays", []string{"start", "x"}, 2, "unknown command"},
		{"usage", "tasks", nil, 2, "restart ID"},
		{"wrong argument count", "flows", []string{"get"}, 2, "get ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(append([]string{c.kind, "--api", a.API}, c.args...)...)
			all := stdout + stderr
			if code != c.code || !strings.Contains(all, c.out) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d containing %q", code, all, c.code, c.out)
			}
		})
	}
}
