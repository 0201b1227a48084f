package agent_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// minimalConfig is a standalone node on loopback with every port chosen
// by the kernel; extra is appended.
func minimalConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "relaymesh.toml")
	body := fmt.Sprintf(`version = 1
[node]
name = "startup"
data_dir = %q
[rtmp]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
[srt]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
[webrtc]
udp_listen = "127.0.0.1:0"
%s`, filepath.Join(dir, "data"), extra)
	// an [rtmp], [api] or [webrtc] in extra replaces the one above
	for _, sec := range []string{"rtmp", "api"} {
		if strings.Contains(extra, "["+sec+"]") {
			body = strings.Replace(body, "["+sec+"]\nlisten = \"127.0.0.1:0\"\n", "", 1)
		}
	}
	if strings.Contains(extra, "[webrtc]") {
		body = strings.Replace(body, "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n", "", 1)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// busyPort holds a TCP port on 127.0.0.1 for the test and returns it as
// "127.0.0.1:PORT" (enough for gossip too: memberlist binds TCP and UDP on
// the same port).
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// run runs the binary with args.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runWithin(t, 2*time.Minute, nil, args...)
}

// runWithin runs the binary, failing the test when it runs longer than d.
func runWithin(t *testing.T, d time.Duration, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("relaymesh %v still running after %s\nstdout: %s\nstderr: %s", args, d, o.String(), e.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// TestStartupErrors: every error of the agent's start is one line on
// stderr naming the key and the address or file, exit status 1, and no
// panic or goroutine dump (a failed New used to panic in Close).
func TestStartupErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the qos case looks up an interface with netlink as the packaged agent does (CI runs as root)")
	}
	cases := []struct {
		name  string
		extra func(t *testing.T) (extra string, want []string)
	}{
		{"rtmp address in use", func(t *testing.T) (string, []string) {
			addr := busyPort(t)
			return fmt.Sprintf("[rtmp]\nlisten = %q\n", addr), []string{"rtmp.listen", addr, "address already in use"}
		}},
		{"api address in use", func(t *testing.T) (string, []string) {
			addr := busyPort(t)
			return fmt.Sprintf("[api]\nlisten = %q\n", addr), []string{"api.listen", addr, "address already in use"}
		}},
		{"webrtc UDP port in use", func(t *testing.T) (string, []string) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			addr := pc.LocalAddr().String()
			return fmt.Sprintf("[webrtc]\nudp_listen = %q\n", addr), []string{"webrtc.udp_listen", addr, "address already in use"}
		}},
		{"gossip address in use", func(t *testing.T) (string, []string) {
			addr := busyPort(t)
			return fmt.Sprintf("[cluster]\nenabled = true\nbind = %q\n", addr),
				[]string{"cluster.bind", addr, "address already in use"}
		}},
		{"qos.interface missing", func(t *testing.T) (string, []string) {
			return "[qos]\nenabled = true\ninterface = \"rmnosuch0\"\nrate = \"100M\"\n", []string{`qos.interface "rmnosuch0"`, "no such network interface"}
		}},
		{"cluster.key_file missing", func(t *testing.T) (string, []string) {
			key := filepath.Join(t.TempDir(), "gossip.key")
			return fmt.Sprintf("[cluster]\nenabled = true\nbind = \"127.0.0.1:0\"\nkey_file = %q\n", key), []string{"cluster.key_file", key, "no such file"}
		}},
		{"cluster.backbone_key_file missing", func(t *testing.T) (string, []string) {
			key := filepath.Join(t.TempDir(), "backbone.key")
			return fmt.Sprintf("[cluster]\nenabled = true\nbind = \"127.0.0.1:0\"\nbackbone_key_file = %q\n", key), []string{"cluster.backbone_key_file", key, "no such file"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extra, want := tc.extra(t)
			cfg := minimalConfig(t, t.TempDir(), extra)
			stdout, stderr, code := runWithin(t, 30*time.Second, nil, "run", "-c", cfg)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			lines := testmedia.Lines(strings.TrimSpace(stderr))
			if len(lines) != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", len(lines), stderr)
			}
			for _, w := range want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, bad := range []string{"panic", "goroutine "} {
				if strings.Contains(stdout+stderr, bad) {
					t.Errorf("output has %q:\nstdout: %s\nstderr: %s", bad, stdout, stderr)
				}
			}
		})
	}
}

// TestCheckNeededFiles: `relaymesh check` loads every file the agent
// reads at start, checks that the service user can read them (--user,
// by default the packaged unit's relaymesh when run as root), and warns
// about a [qos] interface missing here.
func TestCheckNeededFiles(t *testing.T) {
	dir := openTempDir(t)
	secret := filepath.Join(dir, "secret.key")
	os.WriteFile(secret, []byte("c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1sb25nLWZvci10ZXN0\n"), 0o600)
	gossipKey := filepath.Join(dir, "gossip.key")
	os.WriteFile(gossipKey, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o644)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o700)
	hidden := filepath.Join(private, "backbone.key")
	os.WriteFile(hidden, []byte("backbone-passphrase\n"), 0o644)
	missing := filepath.Join(dir, "missing.key")

	cases := []struct {
		name   string
		extra  string
		dropin string // a conf.d drop-in, mode 0600
		args   []string
		code   int
		stderr []string
	}{
		{name: "cluster.key_file missing", code: 1,
			extra:  fmt.Sprintf("[cluster]\nenabled = true\nkey_file = %q\n", missing),
			stderr: []string{"cluster.key_file: gossip key file " + missing, "no such file"}},
		{name: "cluster.backbone_key_file missing", code: 1,
			extra:  fmt.Sprintf("[cluster]\nenabled = true\nbackbone_key_file = %q\n", missing),
			stderr: []string{"cluster.backbone_key_file: open " + missing}},
		{name: "webhooks.secret_file missing", code: 1,
			extra:  fmt.Sprintf("[webhooks]\nurl = \"http://127.0.0.1:1/hook\"\nsecret_file = %q\n", missing),
			stderr: []string{"webhooks.secret_file: open " + missing}},
		{name: "files present", code: 0,
			extra: fmt.Sprintf("[cluster]\nenabled = true\nkey_file = %q\n", gossipKey), args: []string{"--user", ""}},
		{name: "secret not readable by the service user", code: 1,
			extra: fmt.Sprintf("[webhooks]\nurl = \"http://127.0.0.1:1/hook\"\nsecret_file = %q\n", secret), args: []string{"--user", "nobody"},
			stderr: []string{"webhooks.secret_file: " + secret + " (0600 ", "not readable by user nobody"}},
		{name: "api.read_token_file not readable by the service user", code: 1,
			extra: fmt.Sprintf("[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = %q\nread_token_file = %q\n", gossipKey, secret), args: []string{"--user", "nobody"},
			stderr: []string{"api.read_token_file: " + secret + " (0600 ", "not readable by user nobody"}},
		{name: "auth.locate_token_file not readable by the service user", code: 1,
			extra: fmt.Sprintf("[auth]\nlocate_token_file = %q\n", secret), args: []string{"--user", "nobody"},
			stderr: []string{"auth.locate_token_file: " + secret + " (0600 ", "not readable by user nobody"}},
		{name: "directory on the way closed to the service user", code: 1,
			extra: fmt.Sprintf("[cluster]\nenabled = true\nbackbone_key_file = %q\n", hidden), args: []string{"--user", "nobody"},
			stderr: []string{"cluster.backbone_key_file: user nobody cannot enter directory " + private}},
		{name: "drop-in not readable by the service user", code: 1,
			dropin: "[limits]\nmax_publishers = 10\n", args: []string{"--user", "nobody"},
			stderr: []string{filepath.Join("conf.d", "10-local.toml") + " (0600 ", "not readable by user nobody"}},
		{name: "cluster.replace out of range", code: 1,
			extra:  "[cluster.replace]\nratio = 0\nmargin = \"11s\"\n",
			stderr: []string{"cluster.replace.ratio: 0 is not in (0, 1]", "cluster.replace.margin: 11s is outside 0..10s"}},
		{name: "qos interface missing here is a warning", code: 0,
			extra:  "[qos]\nenabled = true\ninterface = \"rmnosuch0\"\nrate = \"100M\"\n",
			stderr: []string{`warning: qos.interface "rmnosuch0": no such interface on this host; the agent refuses to start`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cdir := openTempDir(t)
			cfg := minimalConfig(t, cdir, tc.extra)
			if tc.dropin != "" {
				os.Mkdir(filepath.Join(cdir, "conf.d"), 0o755)
				os.WriteFile(filepath.Join(cdir, "conf.d", "10-local.toml"), []byte(tc.dropin), 0o600)
			}
			out, errOut, code := run(t, append([]string{"check", "-c", cfg}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tc.code == 0 && !strings.Contains(out, ": ok") {
				t.Errorf("stdout lacks ok: %s", out)
			}
		})
	}
}

// openTempDir is a t.TempDir that every user may enter (t.TempDir's
// parent is 0700).
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// flvStatus is the HTTP status of a GET of an HTTP-FLV stream URL.
func flvStatus(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReloadVerdict: `relaymesh reload` (the unit's ExecReload) waits for
// the agent's verdict: a refused config exits 1 with the reason and the
// old config stays in force; a good one exits 0 and is applied.
func TestReloadVerdict(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the refused case names a qos.interface, which the agent looks up with netlink (CI runs as root)")
	}
	rt := t.TempDir()
	env := []string{"RUNTIME_DIRECTORY=" + rt}
	a := startAgentIn(t, t.TempDir(), "test-node", "", env)
	flv := a.flv("live/none")
	if got := flvStatus(t, flv); got != http.StatusNotFound {
		t.Fatalf("GET %s = %d before any reload, want 404 (no such stream)", flv, got)
	}
	allow := "[auth]\nplay_allow = [\"192.0.2.0/24\"]\n"
	// only the agent's own user (and root) may ask it to reload
	if fi, err := os.Stat(filepath.Join(rt, "control.sock")); err != nil {
		t.Errorf("control socket: %v", err)
	} else if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket of mode 0600", fi.Mode())
	}

	t.Run("refused", func(t *testing.T) {
		a.writeConfig(t, allow+"[qos]\nenabled = true\ninterface = \"rmnosuch0\"\nrate = \"100M\"\n")
		_, errOut, code := runWithin(t, time.Minute, env, "reload")
		if code != 1 {
			t.Errorf("exit %d, want 1; stderr: %s", code, errOut)
		}
		for _, w := range []string{"refused; the old config stays in force", `qos.interface "rmnosuch0"`} {
			if !strings.Contains(errOut, w) {
				t.Errorf("stderr lacks %q: %s", w, errOut)
			}
		}
		if got := flvStatus(t, flv); got != http.StatusNotFound {
			t.Errorf("GET %s = %d after the refused reload, want 404: its play_allow must not be in force", flv, got)
		}
	})
	t.Run("good", func(t *testing.T) {
		a.writeConfig(t, allow)
		out, errOut, code := runWithin(t, time.Minute, env, "reload")
		if code != 0 || !strings.Contains(out, "reloaded") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0 and reloaded", code, out, errOut)
		}
		if got := flvStatus(t, flv); got != http.StatusForbidden {
			t.Errorf("GET %s = %d after the reload, want 403: auth.play_allow is in force", flv, got)
		}
	})
	t.Run("no agent", func(t *testing.T) {
		_, errOut, code := runWithin(t, time.Minute, []string{"RUNTIME_DIRECTORY=" + t.TempDir()}, "reload")
		if code != 1 || !strings.Contains(errOut, "no agent answers on") {
			t.Errorf("exit %d, stderr %q; want 1 and no agent answers", code, errOut)
		}
	})
}

// TestRefusedReloadChangesNothing: a reload refused because one of its
// changes needs a restart applies none of the others: here an RTMP
// listener move beside cluster.enabled stays undone, the listener where
// it was.
func TestRefusedReloadChangesNothing(t *testing.T) {
	rt := t.TempDir()
	env := []string{"RUNTIME_DIRECTORY=" + rt}
	a := startAgentIn(t, t.TempDir(), "test-node", "", env)
	oldAddr := fmt.Sprintf("127.0.0.1:%d", a.ports["rtmp"])
	newPort := testmedia.FreePort(t)
	newAddr := fmt.Sprintf("127.0.0.1:%d", newPort)
	a.ports["rtmp"] = newPort
	a.writeConfig(t, "[cluster]\nenabled = true\nbind = \"127.0.0.1:0\"\n")
	_, errOut, code := runWithin(t, time.Minute, env, "reload")
	if code != 1 || !strings.Contains(errOut, "need a restart") || !strings.Contains(errOut, "cluster.enabled") {
		t.Errorf("reload: exit %d, stderr %q; want 1 and cluster.enabled needs a restart", code, errOut)
	}
	if c, err := net.DialTimeout("tcp", oldAddr, 2*time.Second); err != nil {
		t.Errorf("RTMP no longer listens on %s after the refused reload: %v", oldAddr, err)
	} else {
		c.Close()
	}
	if c, err := net.DialTimeout("tcp", newAddr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("RTMP listens on %s: the refused reload moved it", newAddr)
	}
}
