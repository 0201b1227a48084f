package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// netnsRun runs a command in the named network namespace.
func netnsRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec %s %v: %v\n%s", ns, args, err, out)
	}
	return string(out)
}

// newNetns adds a network namespace named prefix and the test's pid, with
// lo up, deleted when the test ends; it skips the test when not root.
func newNetns(t *testing.T, prefix string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and tc state in it (CI runs as root)")
	}
	testmedia.Need(t, "ip", "tc")
	ns := fmt.Sprintf("%s%d", prefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	netnsRun(t, ns, "ip", "link", "set", "lo", "up")
	return ns
}

// runInNetns starts `relaymesh run -c cfg` in ns with env added; kill
// is kill -9 of the agent (ip netns exec execs it), also done when the
// test ends, after which the log is shown if the test failed.
func runInNetns(t *testing.T, ns, cfg string, env []string) (logs *testmedia.LogBuffer, kill func()) {
	t.Helper()
	logs = &testmedia.LogBuffer{}
	cmd := exec.Command("ip", "netns", "exec", ns, binary(t), "run", "-c", cfg)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(os.Environ(), env...), logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	kill = func() {
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(func() {
		kill()
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	return logs, kill
}

// TestCleanupFromRecord: the agent records the tc tree it installed in
// its runtime directory, and `relaymesh cleanup` removes it from that
// record alone after a kill -9, with the config broken; on an interface
// that is gone it says so and claims nothing. Real binaries in a network
// namespace with a veth pair.
func TestCleanupFromRecord(t *testing.T) {
	ns := newNetns(t, "rmclean")
	bin := binary(t)
	dir := openTempDir(t)
	rt := filepath.Join(dir, "run")
	os.Mkdir(rt, 0o750)
	env := append(os.Environ(), "RUNTIME_DIRECTORY="+rt)
	record := filepath.Join(rt, "qos.json")
	hasTree := func() bool {
		out, err := exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", "rmcl0").CombinedOutput()
		return err == nil && strings.Contains(string(out), "qdisc htb 524d: root")
	}
	// start an agent shaping rmcl0, wait for its tree and record, kill -9
	shapeAndKill := func(t *testing.T) string {
		t.Helper()
		netnsRun(t, ns, "ip", "link", "add", "rmcl0", "type", "veth", "peer", "name", "rmcl0p")
		netnsRun(t, ns, "ip", "link", "set", "rmcl0", "up")
		cfg := minimalConfig(t, dir, "[qos]\nenabled = true\ninterface = \"rmcl0\"\nrate = \"100M\"\n")
		_, kill := runInNetns(t, ns, cfg, []string{"RUNTIME_DIRECTORY=" + rt})
		defer kill()
		testmedia.Eventually(t, 15*time.Second, "the agent's tree on rmcl0 and its record", func() bool {
			b, _ := os.ReadFile(record)
			return strings.Contains(string(b), `"interface": "rmcl0"`) && hasTree()
		})
		b, _ := os.ReadFile(record)
		for _, w := range []string{`"interface": "rmcl0"`, `"root_qdisc": "524d:"`, `"kind": "htb"`} {
			if !strings.Contains(string(b), w) {
				t.Errorf("record lacks %s:\n%s", w, b)
			}
		}
		return cfg
	}
	cleanup := func(t *testing.T, cfg string) (string, string, int) {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "cleanup", "-c", cfg)
		cmd.Env = env
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		return o.String(), e.String(), code
	}

	t.Run("broken config, record only", func(t *testing.T) {
		cfg := shapeAndKill(t)
		if !hasTree() {
			t.Fatal("the tree went with the killed agent; nothing to test")
		}
		os.WriteFile(cfg, []byte("this is [not toml\n"), 0o644)
		out, errOut, code := cleanup(t, cfg)
		if code != 0 || !strings.Contains(out, "rmcl0: removed the relaymesh tc tree") {
			t.Errorf("cleanup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if hasTree() {
			t.Errorf("the tree is still on rmcl0 after cleanup")
		}
		if b, _ := os.ReadFile(record); !strings.Contains(string(b), `"trees": []`) {
			t.Errorf("the record still lists trees after cleanup:\n%s", b)
		}
		netnsRun(t, ns, "ip", "link", "del", "rmcl0")
	})
	t.Run("interface gone", func(t *testing.T) {
		cfg := shapeAndKill(t)
		netnsRun(t, ns, "ip", "link", "del", "rmcl0")
		out, errOut, code := cleanup(t, cfg)
		if code != 0 || !strings.Contains(out, "rmcl0: no such interface") {
			t.Errorf("cleanup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if strings.Contains(out, "removed") {
			t.Errorf("cleanup claims a removal on an interface that does not exist: %s", out)
		}
		if b, _ := os.ReadFile(record); !strings.Contains(string(b), `"trees": []`) {
			t.Errorf("the record still lists trees after cleanup:\n%s", b)
		}
	})
	t.Run("empty record, broken config", func(t *testing.T) {
		cfg := filepath.Join(dir, "broken.toml")
		os.WriteFile(cfg, []byte("[qos\n"), 0o644)
		out, errOut, code := cleanup(t, cfg)
		if code != 0 || !strings.Contains(out, "lists no tc tree; nothing to remove") {
			t.Errorf("cleanup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
	t.Run("no record, broken config", func(t *testing.T) {
		os.Remove(record)
		cfg := filepath.Join(dir, "broken.toml")
		os.WriteFile(cfg, []byte("[qos\n"), 0o644)
		out, errOut, code := cleanup(t, cfg)
		if code != 0 || !strings.Contains(errOut, "nothing removed") || strings.Contains(out, "removed") {
			t.Errorf("cleanup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})
}
