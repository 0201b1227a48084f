// Package testagent runs the relaymesh binary for tests of the packages
// that talk to it (agent, client, cli): a standalone node on loopback
// ports, optionally with an API token and a runtime directory. It is the
// one way tests start the binary.
package testagent

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// Token is the API token of every agent started with Options.Token.
const Token = "0123456789abcdef-testagent-token"

// Options say what Run starts.
type Options struct {
	Name string // [node] name; "test-node" when ""
	// Dir holds the config (Dir/relaymesh.toml), the data dir (Dir/data,
	// which may be a mount the test made) and the runtime directory
	// (Dir/run); a new temp dir when "".
	Dir string
	// Token writes Token to Dir/token and names it in [api] token_file.
	Token bool
	// RuntimeDir sets $RUNTIME_DIRECTORY to Dir/run (the control socket,
	// so client.Reload, and the record of tc state).
	RuntimeDir bool
	// Extra is TOML appended to the base config, which ends inside
	// [limits] (after reconnect_grace = "500ms"), so bare keys go there.
	// Without a [webrtc] section in Extra, WebRTC listens on an ephemeral
	// loopback UDP port.
	Extra string
	Env   []string // added to the agent's environment
}

// Agent is a running relaymesh binary.
type Agent struct {
	Name  string
	API   string         // base URL
	RTMP  int            // port
	Ports map[string]int // "rtmp", "http", "srt", "api"
	// TokenFile is Dir/token ("" without Options.Token).
	TokenFile string
	// Config is the config file; RuntimeDir is its $RUNTIME_DIRECTORY,
	// where the control socket (client.Reload) is ("" without
	// Options.RuntimeDir).
	Config, RuntimeDir string
	Logs               *testmedia.LogBuffer
	Cmd                *exec.Cmd
	Exited             chan struct{} // closed when the process has exited
	env                []string
	exitErr            error
}

const config = `version = 1
[node]
name = %q
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
%s[limits]
reconnect_grace = "500ms"
%s
`

// ephemeralWebRTC is the [webrtc] of agents whose extra has none: on (the
// default) with a UDP port the kernel picks, as agents run in parallel
// and the default :8189 would clash.
const ephemeralWebRTC = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n"

// Start runs the binary as node name with an API token and a runtime
// directory, and waits until its API answers; the test's cleanup kills it.
func Start(t testing.TB, name string) *Agent {
	t.Helper()
	return Run(t, Options{Name: name, Token: true, RuntimeDir: true})
}

// Run writes the config of o, runs the binary on it and waits until its
// API answers; the test's cleanup kills it.
func Run(t testing.TB, o Options) *Agent {
	t.Helper()
	if o.Name == "" {
		o.Name = "test-node"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	a := &Agent{Name: o.Name, Config: filepath.Join(o.Dir, "relaymesh.toml"), env: o.Env}
	if o.Token {
		a.TokenFile = filepath.Join(o.Dir, "token")
		if err := os.WriteFile(a.TokenFile, []byte(Token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if o.RuntimeDir {
		a.RuntimeDir = filepath.Join(o.Dir, "run")
		if err := os.Mkdir(a.RuntimeDir, 0o700); err != nil {
			t.Fatal(err)
		}
		a.env = append([]string{"RUNTIME_DIRECTORY=" + a.RuntimeDir}, a.env...)
	}
	// a port found free can be taken by another test's process before the
	// binary binds it (each is checked free over TCP and UDP, but only
	// then): the binary exits at once, and it runs again on other ports
	for attempt := 1; ; attempt++ {
		ports := testmedia.FreePorts(t, 4)
		a.API, a.RTMP = fmt.Sprintf("http://127.0.0.1:%d", ports[3]), ports[0]
		a.Ports = map[string]int{"rtmp": ports[0], "http": ports[1], "srt": ports[2], "api": ports[3]}
		a.WriteConfig(t, o.Extra)
		b, err := a.start(t)
		if err == nil {
			return b
		}
		if attempt == 3 || !strings.Contains(b.Logs.String(), "address already in use") {
			t.Fatalf("agent %s: %v (its log follows)", a.Name, err)
		}
		t.Logf("agent %s: a port was taken before it bound it, running it on other ports: %v", a.Name, err)
	}
}

// WriteConfig replaces the config file atomically: the base config with
// extra appended (as Options.Extra). The agent reads it on its next
// reload or restart.
func (a *Agent) WriteConfig(t testing.TB, extra string) {
	t.Helper()
	apiExtra := ""
	if a.TokenFile != "" {
		apiExtra = fmt.Sprintf("token_file = %q\n", a.TokenFile)
	}
	body := fmt.Sprintf(config, a.Name, filepath.Join(filepath.Dir(a.Config), "data"),
		a.Ports["rtmp"], a.Ports["http"], a.Ports["srt"], a.Ports["api"], apiExtra, extra)
	if !strings.Contains(extra, "[webrtc]") {
		body += ephemeralWebRTC
	}
	tmp := a.Config + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, a.Config); err != nil {
		t.Fatal(err)
	}
}

// Restart runs the binary again on a's config, ports, data dir and
// environment (after the test killed it, or for a second process that
// must be refused) and waits until its API answers; the test's cleanup
// kills it. The returned Agent is the new process.
func (a *Agent) Restart(t testing.TB) *Agent {
	t.Helper()
	b, err := a.start(t)
	if err != nil {
		t.Fatalf("agent %s: %v (its log follows)", a.Name, err)
	}
	return b
}

// start runs the binary on a's config and waits until its API answers
// (nil) or it exits first (its exit status).
func (a *Agent) start(t testing.TB) (*Agent, error) {
	t.Helper()
	b := *a
	b.Logs, b.Exited, b.exitErr = &testmedia.LogBuffer{}, make(chan struct{}), nil
	b.Cmd = exec.Command(testmedia.Binary(t), "run", "-c", b.Config)
	b.Cmd.Env = append(os.Environ(), b.env...)
	b.Cmd.Stdout, b.Cmd.Stderr = b.Logs, b.Logs
	if err := b.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exitErr = b.Cmd.Wait(); close(b.Exited) }()
	t.Cleanup(func() {
		b.Cmd.Process.Kill()
		<-b.Exited
		if t.Failed() {
			t.Logf("agent %s log:\n%s", b.Name, b.Logs)
		}
	})
	healthy := false
	testmedia.Eventually(t, 20*time.Second, "agent /healthz (or its exit)", func() bool {
		if resp, err := http.Get(b.API + "/healthz"); err == nil {
			resp.Body.Close()
			if healthy = resp.StatusCode == http.StatusOK; healthy {
				return true
			}
		}
		select {
		case <-b.Exited:
			return true
		default:
			return false
		}
	})
	if !healthy {
		return &b, fmt.Errorf("exited before its API answered: %v", b.exitErr)
	}
	return &b, nil
}

// ExitErr is the process's exit status; valid once Exited is closed.
func (a *Agent) ExitErr() error {
	<-a.Exited
	return a.exitErr
}

// Client is a typed client of the agent's API, with the token when the
// agent has one.
func (a *Agent) Client() *client.Client {
	if a.TokenFile == "" {
		return client.New(a.API)
	}
	return client.New(a.API, client.WithToken(Token))
}
