// Package testagent runs the relaymesh binary for tests of the packages
// that talk to it (client, cli): a standalone node on loopback with an
// API token.
package testagent

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// Token is the API token of every agent Start runs.
const Token = "0123456789abcdef-testagent-token"

// Agent is a running relaymesh binary.
type Agent struct {
	API       string // base URL
	RTMP      int    // port
	TokenFile string
	// Config is the config file; RuntimeDir is its $RUNTIME_DIRECTORY,
	// where the control socket (client.Reload) is.
	Config, RuntimeDir string
	Logs               *testmedia.LogBuffer
}

const config = `version = 1
[node]
name = %q
data_dir = %q
[rtmp]
listen = "127.0.0.1:%d"
[http]
listen = "127.0.0.1:%d"
[srt]
listen = "127.0.0.1:%d"
[api]
listen = "127.0.0.1:%d"
token_file = %q
[webrtc]
udp_listen = "127.0.0.1:0"
`

// Start runs the binary as node name and waits until its API answers;
// the test's cleanup kills it.
func Start(t testing.TB, name string) *Agent {
	t.Helper()
	dir := t.TempDir()
	ports := testmedia.FreePorts(t, 4)
	a := &Agent{API: fmt.Sprintf("http://127.0.0.1:%d", ports[3]), RTMP: ports[0],
		TokenFile: filepath.Join(dir, "token"), Config: filepath.Join(dir, "relaymesh.toml"),
		RuntimeDir: filepath.Join(dir, "run"), Logs: &testmedia.LogBuffer{}}
	if err := os.Mkdir(a.RuntimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.TokenFile, []byte(Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(config, name, filepath.Join(dir, "data"), ports[0], ports[1], ports[2], ports[3], a.TokenFile)
	if err := os.WriteFile(a.Config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testmedia.Binary(t), "run", "-c", a.Config)
	cmd.Env = append(os.Environ(), "RUNTIME_DIRECTORY="+a.RuntimeDir)
	cmd.Stdout, cmd.Stderr = a.Logs, a.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("agent log:\n%s", a.Logs)
		}
	})
	testmedia.Eventually(t, 20*time.Second, "agent /healthz", func() bool {
		resp, err := http.Get(a.API + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return a
}
