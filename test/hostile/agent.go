// Package hostile runs hostile input against the real relaymesh binary:
// mutated SRT datagrams on the SRT and backbone listeners, hostile SRT
// servers for the agent's SRT callers, and mutated RTMP and HTTP-FLV
// sessions, while a canary stream keeps flowing through the same agent.
// The packet builders and the seeded mutator are in package wire.
package hostile

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// Binary builds relaymesh once per test binary run.
func Binary(t testing.TB) string { return testmedia.Binary(t) }

// Agent is a running relaymesh binary: a standalone node with RTMP,
// HTTP-FLV, SRT, the API and (cluster enabled on loopback) the SRT
// backbone listener, each on its own loopback port.
type Agent struct {
	Dir  string // config, keys and data dir
	Logs *testmedia.LogBuffer
	Port map[string]int // rtmp, http, srt, api, gossip, backbone

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

const agentConfig = `version = 1
[node]
name = "hostile"
role = "standalone"
data_dir = %q
log_level = "info"
[rtmp]
listen = "127.0.0.1:%d"
[http]
listen = "127.0.0.1:%d"
[srt]
listen = "127.0.0.1:%d"
[api]
listen = "127.0.0.1:%d"
[limits]
handshake_timeout = "2s"
# the hostile servers and the relay targets listen on loopback, which the
# fetch policy denies by default
[objects]
fetch_allow = ["127.0.0.0/8"]
[cluster]
enabled = true
bind = "127.0.0.1:%d"
key_file = %q
backbone_listen = "127.0.0.1:%d"
backbone_key_file = %q
`

// StartAgent writes a config and starts the agent; it is killed when the
// test ends (its log is printed if the test failed).
func StartAgent(t testing.TB) *Agent {
	t.Helper()
	a := &Agent{Dir: t.TempDir(), Logs: &testmedia.LogBuffer{}, Port: map[string]int{}}
	for _, k := range []string{"rtmp", "http", "srt", "api", "gossip", "backbone"} {
		a.Port[k] = testmedia.FreePort(t)
	}
	gossipKey, backboneKey := filepath.Join(a.Dir, "gossip.key"), filepath.Join(a.Dir, "backbone.key")
	for _, p := range []string{gossipKey, backboneKey} {
		b := make([]byte, 32)
		rand.Read(b)
		if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(agentConfig, filepath.Join(a.Dir, "data"), a.Port["rtmp"], a.Port["http"], a.Port["srt"],
		a.Port["api"], a.Port["gossip"], gossipKey, a.Port["backbone"], backboneKey)
	if err := os.WriteFile(a.config(), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			t.Logf("agent log:\n%s", a.Logs)
		}
	})
	a.Start(t)
	return a
}

func (a *Agent) config() string { return filepath.Join(a.Dir, "relaymesh.toml") }

// Start starts the binary on the agent's config and waits for /healthz.
func (a *Agent) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(Binary(t), "run", "-c", a.config())
	if os.Getenv("RELAYMESH_HOSTILE_GDB") != "" {
		// a crash in C (libsrt) leaves no Go trace: run the agent under
		// gdb, which prints every thread's stack when it dies
		cmd = exec.Command("gdb", "-q", "-batch", "-ex", "handle SIGURG SIGPIPE SIGPROF SIGCHLD SIGWINCH nostop noprint pass",
			"-ex", "run", "-ex", "thread apply all bt 40", "--args", Binary(t), "run", "-c", a.config())
	}
	cmd.Stdout, cmd.Stderr = a.Logs, a.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	a.mu.Lock()
	a.cmd, a.exited, a.err = cmd, exited, nil
	a.mu.Unlock()
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
		close(exited)
	}()
	testmedia.Eventually(t, 15*time.Second, "agent /healthz", func() bool {
		if !a.Alive() {
			t.Fatalf("agent exited at start: %v", a.ExitErr())
		}
		resp, err := http.Get(a.API("/healthz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Alive reports whether the process is still running.
func (a *Agent) Alive() bool {
	a.mu.Lock()
	ch := a.exited
	a.mu.Unlock()
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// Exited waits up to d for the process to exit and reports whether it
// did. Once it has, its whole output (a panic included) is in Logs:
// cmd.Wait copies all of it before it returns.
func (a *Agent) Exited(d time.Duration) bool {
	a.mu.Lock()
	ch := a.exited
	a.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// ExitErr is how the process ended (nil while it runs or on status 0).
func (a *Agent) ExitErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// PID is the agent's process id (under gdb, gdb's child).
func (a *Agent) PID() int {
	a.mu.Lock()
	pid := a.cmd.Process.Pid
	a.mu.Unlock()
	if os.Getenv("RELAYMESH_HOSTILE_GDB") != "" {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
			if c, err := strconv.Atoi(strings.Fields(string(b) + " 0")[0]); err == nil && c > 0 {
				return c
			}
		}
	}
	return pid
}

// Stop sends SIGTERM and waits (at most 30 s, then SIGKILL) for the exit.
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd, ch := a.cmd, a.exited
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-ch
	}
}

// Kill kills the process and waits for it.
func (a *Agent) Kill() {
	a.mu.Lock()
	cmd, ch := a.cmd, a.exited
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-ch
}

// Panic returns the first lines of a Go panic in the agent's output, or "".
func (a *Agent) Panic() string {
	s := a.Logs.String()
	i := strings.Index(s, "panic:")
	if j := strings.Index(s, "received signal"); j >= 0 && (i < 0 || j < i) { // gdb
		i = j
	}
	if i < 0 {
		i = strings.Index(s, "fatal error:")
	}
	if i < 0 {
		i = strings.Index(s, "SIGSEGV")
	}
	if i < 0 {
		return ""
	}
	s = s[i:]
	if len(s) > 20000 {
		s = s[:20000]
	}
	return s
}

// MustBeAlive fails the test with the agent's panic when it died.
func (a *Agent) MustBeAlive(t testing.TB, after string) {
	t.Helper()
	if a.Alive() {
		return
	}
	t.Fatalf("the agent died %s (%v):\n%s", after, a.ExitErr(), a.Panic())
}

// API is the URL of an API path.
func (a *Agent) API(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", a.Port["api"], path)
}

// Addr is 127.0.0.1:port of a listener.
func (a *Agent) Addr(name string) string { return fmt.Sprintf("127.0.0.1:%d", a.Port[name]) }

// RTMP is the RTMP URL of a stream key.
func (a *Agent) RTMP(key string) string { return "rtmp://" + a.Addr("rtmp") + "/" + key }

// Call sends a JSON request to the API and decodes the answer into out
// (if not nil); it returns the status code.
func (a *Agent) Call(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.API(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.Exited(2 * time.Second) // a dying agent: its panic in the log
		a.MustBeAlive(t, fmt.Sprintf("answering %s %s", method, path))
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// RSS is the process's resident set size in KiB (VmRSS).
func RSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// SRTConnections is the agent's relaymesh_srt_connections (every role)
// read from /metrics.
func (a *Agent) SRTConnections() (int, error) {
	resp, err := http.Get(a.API("/metrics"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	n, found := 0, false
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "relaymesh_srt_connections{") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", l, err)
		}
		n += int(v)
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no relaymesh_srt_connections in /metrics")
	}
	return n, nil
}
