package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestObjectsCLI(t *testing.T) {
	o := startObjAgent(t, nil)
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte(testToken+"\n"), 0o600)
	flowFile := filepath.Join(dir, "f.json")
	os.WriteFile(flowFile, []byte(`{"id":"cli","source":{"type":"rtmp-push","stream":"live/cli"},"outputs":[{"name":"p","type":"httpflv"}]}`), 0o600)
	cases := []struct {
		name string
		kind string
		args []string
		code int
		out  string
	}{
		{"create without token", "flows", []string{"create", flowFile}, 1, "Bearer"},
		{"create", "flows", []string{"--token-file", tok, "create", flowFile}, 0, `"state": "standby"`},
		{"start", "flows", []string{"--token-file", tok, "start", "cli"}, 0, `"id": "cli"`},
		{"list", "flows", []string{"list"}, 0, "cli "},
		{"delete running refused", "flows", []string{"--token-file", tok, "delete", "cli"}, 1, "stop it before deleting it"},
		{"stop", "flows", []string{"--token-file", tok, "stop", "cli"}, 0, `"state": "standby"`},
		{"delete", "flows", []string{"--token-file", tok, "delete", "cli"}, 0, "deleted cli"},
		{"get missing", "tasks", []string{"get", "nope"}, 1, "no task nope"},
		{"relays have no start", "relays", []string{"start", "x"}, 2, "unknown command"},
		{"usage", "tasks", nil, 2, "restart ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cmdObjects(c.kind, append([]string{"--api", o.base}, c.args...), &stdout, &stderr)
			all := stdout.String() + stderr.String()
			if code != c.code || !strings.Contains(all, c.out) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d containing %q", code, all, c.code, c.out)
			}
		})
	}
}
