package cli

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestCheckEveryErrorBinary: the built binary's `check` of a file with
// four problems of four kinds (a wrong type, a value its type refuses,
// an unknown key, a value validation refuses) exits 1 and names every
// one with file, line and key, in file order. It named only the first:
// the decoder reports a refused value like a syntax error, and the search
// for more stopped there.
func TestCheckEveryErrorBinary(t *testing.T) {
	out, err := exec.Command(testmedia.Binary(t), "check", "-c", "testdata/four-errors.toml", "--user", "").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check: %v, want exit 1\n%s", err, out)
	}
	want := []string{
		"relaymesh: testdata/four-errors.toml: config has problems:",
		`  testdata/four-errors.toml:9: rtmp.listen: want string, got integer`,
		`  testdata/four-errors.toml:12: srt.latency: "fast" is not a duration: write e.g. "250ms", "10s" or "1m30s"`,
		`  testdata/four-errors.toml:15: limits.reconect_grace: unknown key; did you mean limits.reconnect_grace?`,
		`  testdata/four-errors.toml:21: flow[0].source.max_cc_errors: counts MPEG-TS continuity errors: a rtmp-push source delivers no MPEG-TS (remove it, or use srt-listener or srt-caller)`,
	}
	if got := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("check printed\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
}
