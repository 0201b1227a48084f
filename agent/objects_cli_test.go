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
	taskFile := filepath.Join(dir, "t.json")
	os.WriteFile(taskFile, []byte(`{"id":"cli-t","name":"Night loop","callback":"http://127.0.0.1:1/hook","source":{"playlist":["/srv/a.mp4"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"}}`), 0o600)
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
		{"create task", "tasks", []string{"--token-file", tok, "create", taskFile}, 0, `"name": "Night loop"`},
		{"list tasks by name", "tasks", []string{"list", "name=Night loop"}, 0, "cli-t  Night loop  Stopped"},
		{"list tasks by another name", "tasks", []string{"--json", "list", "name=Day"}, 0, `"tasks": []`},
		{"list tasks by an unknown key", "tasks", []string{"list", "colour=red"}, 1, "tasks are filtered by id, name, destination"},
		{"list with a bare word", "tasks", []string{"list", "Night"}, 2, "is not KEY=VALUE"},
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
