package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runWithin(t, 2*time.Minute, nil, args...)
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
			`bad.toml:3: rtmp.listen: "nope"`,
			`bad.toml:5: limits.read_timeout: want a duration string such as "10s", got integer 10`,
			`bad.toml:6: limits.bogus: unknown key`,
		}},
		{"missing file", []string{"check", "-c", filepath.Join(dir, "nope.toml")}, 1, nil, []string{"nope.toml"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
		{"version", []string{"version"}, 0, []string{"relaymesh "}, nil},
		{"help", []string{"help"}, 0, []string{"relaymesh run", "relaymesh check", "relaymesh status", "relaymesh locate", "relaymesh sign"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
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
// as JSON; without an agent it says how to reach one.
func TestCLIStatus(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if _, errOut, code := run(t, "status", "--api", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "cannot reach the relaymesh API") {
		t.Errorf("status without an agent: exit %d, stderr %q", code, errOut)
	}
	a := startAgent(t, "")
	testmedia.Publish(t, context.Background(), testmedia.Source{Realtime: true, Audio: true, Duration: 8 * time.Second}, a.rtmp("live/cli"))
	api := fmt.Sprintf("http://127.0.0.1:%d", a.ports["api"])
	var out string
	testmedia.Eventually(t, 10*time.Second, "status to list live/cli with its codecs", func() bool {
		out, _, _ = run(t, "status", "--api", api)
		return strings.Contains(out, "live/cli") && strings.Contains(out, "H264 640x360")
	})
	for _, w := range []string{"node test-node", "STREAM", "AAC", "rtmp 127.0.0.1:"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	js, _, code := run(t, "status", "--api", api, "--json")
	if code != 0 || !strings.Contains(js, `"name":"live/cli"`) {
		t.Errorf("status --json: exit %d: %s", code, js)
	}
}
