package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestCheckFlowCycleBinary: the built binary's `check` refuses a file
// whose flows take each other's output, exit 1, naming file, line, key and
// the cycle; without the cycle the same flows pass.
func TestCheckFlowCycleBinary(t *testing.T) {
	bin := testmedia.Binary(t)
	out, err := exec.Command(bin, "check", "-c", "testdata/flow-cycle.toml", "--user", "").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("check: %v, want exit 1\n%s", err, out)
	}
	for _, w := range []string{
		"flow-cycle.toml: config has problems:",
		`flow-cycle.toml:12: flow[0].source.flow: flow cycle FlowA -> FlowB -> FlowA: flow "FlowA" cannot take flow "FlowB"`,
		"(flow[0] -> flow[1] -> flow[0])",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(string(out), "flow[1].source") {
		t.Errorf("the one cycle is reported twice:\n%s", out)
	}
	body, err := os.ReadFile("testdata/flow-cycle.toml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(body), "type = \"flow\"\nflow = \"FlowA\"\noutput = \"toB\"", "type = \"rtmp-push\"", 1)
	p := filepath.Join(t.TempDir(), "chain.toml")
	if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "-c", p, "--user", "").CombinedOutput(); err != nil || !strings.Contains(string(out), "chain.toml: ok") {
		t.Errorf("a chain FlowA <- FlowB <- publisher: %v\n%s", err, out)
	}
}
