package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

const (
	adminToken  = "admin-token-0123456789abcdef"
	readToken   = "read-token-0123456789abcdef"
	locateToken = "locate-token-0123456789abcdef"
)

func writeFile(t *testing.T, path, s string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// signingKey writes an [auth] key_file in a temp dir and returns its path.
func signingKey(t *testing.T) string {
	return writeFile(t, filepath.Join(t.TempDir(), "auth.key"), "0123456789abcdef0123456789abcdef\n")
}

func at(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }

// call sends a request with tok (none when "") and returns the status and
// body.
func call(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// moveAPI restarts the agent with its API on 0.0.0.0 (beyond loopback;
// the test still connects through 127.0.0.1: the listen address is what
// decides) and apiExtra added to [api].
func moveAPI(t *testing.T, a *agentProc, apiExtra string) *agentProc {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	editConfig(t, a, fmt.Sprintf("[api]\nlisten = \"127.0.0.1:%d\"", a.ports["api"]),
		fmt.Sprintf("[api]\nlisten = \"0.0.0.0:%d\"\n%s", a.ports["api"], apiExtra))
	return a.restart(t)
}

// TestAPIBeyondLoopback: with the API listening beyond loopback every
// route needs a token (the read token opens reads and /metrics, not pprof
// and no change), on loopback reads and pprof are open, and stream keys
// and passphrases are masked in every answer either way.
func TestAPIBeyondLoopback(t *testing.T) {
	a := startAgent(t, "")
	dir := filepath.Dir(a.cfg)
	admin := writeFile(t, filepath.Join(dir, "api.token"), adminToken)
	read := writeFile(t, filepath.Join(dir, "read.token"), readToken)
	relay := `{"id": "yt", "pattern": "live/*", "url": "rtmp://a.rtmp.example/live2/SECRETKEY1",
		"start_time": "` + at(-time.Minute) + `", "end_time": "` + at(time.Hour) + `"}`
	srt := `{"id": "sr", "pattern": "live/*", "url": "srt://127.0.0.1:1?streamid=publish:SECRETKEY2", "passphrase": "SECRETPASS3xx",
		"start_time": "` + at(-time.Minute) + `", "end_time": "` + at(time.Hour) + `"}`
	for _, b := range []string{relay, srt} {
		if st, body := call(t, "POST", a.api("/v1/relays"), "", b); st != 201 {
			t.Fatalf("create on loopback without a token file: %d %s", st, body)
		}
	}
	noSecret := func(t *testing.T, what, body string) {
		t.Helper()
		for _, s := range []string{"SECRETKEY1", "SECRETKEY2", "SECRETPASS3"} {
			if strings.Contains(body, s) {
				t.Errorf("%s shows %s in clear: %s", what, s, body)
			}
		}
	}
	t.Run("loopback", func(t *testing.T) {
		for _, path := range []string{"/v1/relays", "/v1/streams", "/metrics", "/debug/pprof/", "/healthz"} {
			st, body := call(t, "GET", a.api(path), "", "")
			if st != 200 {
				t.Errorf("GET %s on loopback without a token: %d", path, st)
			}
			noSecret(t, "GET "+path, body)
		}
		if _, body := call(t, "GET", a.api("/v1/relays"), "", ""); !strings.Contains(body, "rtmp://a.rtmp.example/live2/********") {
			t.Errorf("the masked relay URL keeps host and app: %s", body)
		}
	})

	b := moveAPI(t, a, fmt.Sprintf("token_file = %q\nread_token_file = %q", admin, read))
	cases := []struct {
		name, method, path, tok string
		body                    string
		want                    int
	}{
		{"relays without token", "GET", "/v1/relays", "", "", 401},
		{"one relay without token", "GET", "/v1/relays/yt", "", "", 401},
		{"streams without token", "GET", "/v1/streams", "", "", 401},
		{"metrics without token", "GET", "/metrics", "", "", 401},
		{"pprof without token", "GET", "/debug/pprof/", "", "", 401},
		{"pprof profile without token", "GET", "/debug/pprof/symbol", "", "", 401},
		{"unknown route without token", "GET", "/v1/nothing", "", "", 401},
		{"create without token", "POST", "/v1/relays", "", relay, 401},
		{"wrong token", "GET", "/v1/relays", "not-the-token-at-all", "", 401},
		{"relays with read token", "GET", "/v1/relays", readToken, "", 200},
		{"metrics with read token", "GET", "/metrics", readToken, "", 200},
		{"pprof with read token", "GET", "/debug/pprof/", readToken, "", 401},
		{"delete with read token", "DELETE", "/v1/relays/yt", readToken, "", 401},
		{"relays with admin token", "GET", "/v1/relays", adminToken, "", 200},
		{"pprof with admin token", "GET", "/debug/pprof/", adminToken, "", 200},
		{"delete with admin token", "DELETE", "/v1/relays/sr", adminToken, "", 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := call(t, c.method, b.api(c.path), c.tok, c.body)
			if st != c.want {
				t.Errorf("%s %s: %d %s, want %d", c.method, c.path, st, body, c.want)
			}
			noSecret(t, c.method+" "+c.path, body)
		})
	}
	t.Run("relaymesh status sends the token", func(t *testing.T) {
		base := fmt.Sprintf("http://127.0.0.1:%d", b.ports["api"])
		if out, errOut, code := run(t, "status", "--api", base, "--token-file", read); code != 0 || !strings.Contains(out, "test-node") {
			t.Errorf("status with the read token: exit %d\n%s%s", code, out, errOut)
		}
		if _, errOut, code := run(t, "status", "--api", base); code == 0 || !strings.Contains(errOut, "token") {
			t.Errorf("status without a token: exit %d, %q: want a failure that names the token", code, errOut)
		}
	})
	t.Run("healthz says only ok without a token", func(t *testing.T) {
		st, body := call(t, "GET", b.api("/healthz"), "", "")
		if st != 200 || strings.Contains(body, "test-node") || strings.Contains(body, "version") {
			t.Errorf("GET /healthz without a token: %d %s, want 200 with the status only", st, body)
		}
		if _, body := call(t, "GET", b.api("/healthz"), readToken, ""); !strings.Contains(body, "test-node") {
			t.Errorf("GET /healthz with the read token lacks the node: %s", body)
		}
	})
	t.Run("PUT of a masked answer keeps the key", func(t *testing.T) {
		// a client changes the end time and sends the URL it was shown
		edit := `{"id": "yt", "pattern": "live/*", "url": "rtmp://a.rtmp.example/live2/********",
			"start_time": "` + at(-time.Minute) + `", "end_time": "` + at(2*time.Hour) + `"}`
		if st, out := call(t, "PUT", b.api("/v1/relays/yt"), adminToken, edit); st != 200 {
			t.Fatalf("PUT with the masked URL: %d %s", st, out)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "data", "objects.json"))
		if !strings.Contains(string(data), "rtmp://a.rtmp.example/live2/SECRETKEY1") {
			t.Errorf("the stored relay lost its key after a PUT of the masked answer: %s", data)
		}
	})
	t.Run("metrics_open", func(t *testing.T) {
		editConfig(t, b, "[api]\n", "[api]\nmetrics_open = true\n")
		if res := reloadAndWait(t, b); res != "reloaded" {
			t.Fatalf("reload: %s", res)
		}
		if st, _ := call(t, "GET", b.api("/metrics"), "", ""); st != 200 {
			t.Errorf("GET /metrics with metrics_open: %d", st)
		}
		if st, _ := call(t, "GET", b.api("/v1/relays"), "", ""); st != 401 {
			t.Errorf("metrics_open opened /v1/relays: %d", st)
		}
	})
	noSecret(t, "the agent log", b.logs.String()+a.logs.String())
}

// TestLocateSigning: /v1/locate signs publish URLs on loopback by
// default; beyond loopback it needs a token, signs only for the API or
// the locate token unless auth.locate_signs = true, and the locate token
// opens nothing else.
func TestLocateSigning(t *testing.T) {
	dir := t.TempDir()
	secret := func(name string) string {
		b := make([]byte, 32)
		rand.Read(b)
		return writeFile(t, filepath.Join(dir, name), base64.StdEncoding.EncodeToString(b)+"\n")
	}
	gossipPort := testmedia.FreePort(t)
	extra := fmt.Sprintf(`[auth]
publish = true
key_file = %q
locate_token_file = %q
[cluster]
enabled = true
bind = "127.0.0.1:%d"
key_file = %q
backbone_key_file = %q
`, secret("auth.key"), writeFile(t, filepath.Join(dir, "locate.token"), locateToken), gossipPort, secret("gossip.key"), secret("backbone.key"))
	a := startAgentIn(t, dir, "test-node", extra, nil)
	locate := "/v1/locate?app=live&stream=cam1&client=127.0.0.1"
	signed := func(body string) bool { return strings.Contains(body, "token=") }
	st, body := call(t, "GET", a.api(locate), "", "")
	if st != 200 || !signed(body) {
		t.Fatalf("locate on loopback: %d %s, want signed URLs", st, body)
	}
	// the signed SRT URL works as written with ffmpeg, which does not
	// decode %XX in the streamid (it had publish%3Alive%2Fcam1: refused)
	var loc client.Located
	if err := json.Unmarshal([]byte(body), &loc); err != nil || !strings.Contains(loc.Edge.SRT, "streamid=publish:live/cam1?token=") {
		t.Fatalf("locate's SRT URL %q (%v), want streamid=publish:live/cam1?token=...", loc.Edge.SRT, err)
	}
	testmedia.Publish(t, context.Background(), testmedia.Source{Realtime: true, Duration: 30 * time.Second}.Defaults(), loc.Edge.SRT)
	waitStreams(t, a, "live/cam1 published over locate's signed SRT URL", func(sr streamsResp) bool {
		for _, st := range sr.Streams {
			if st.Name == "live/cam1" {
				return true
			}
		}
		return false
	})
	admin := writeFile(t, filepath.Join(dir, "api.token"), adminToken)
	read := writeFile(t, filepath.Join(dir, "read.token"), readToken)
	b := moveAPI(t, a, fmt.Sprintf("token_file = %q\nread_token_file = %q", admin, read))
	cases := []struct {
		name, path, tok string
		want            int
		signed          bool
	}{
		{"no token", locate, "", 401, false},
		{"read token: unsigned", locate, readToken, 200, false},
		{"locate token: signed", locate, locateToken, 200, true},
		{"admin token: signed", locate, adminToken, 200, true},
		{"locate token opens nothing else", "/v1/nodes", locateToken, 401, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := call(t, "GET", b.api(c.path), c.tok, "")
			if st != c.want || (st == 200 && signed(body) != c.signed) {
				t.Errorf("GET %s: %d %s, want %d signed=%v", c.path, st, body, c.want, c.signed)
			}
		})
	}
	t.Run("locate_signs = true", func(t *testing.T) {
		editConfig(t, b, "[auth]\n", "[auth]\nlocate_signs = true\n")
		if res := reloadAndWait(t, b); res != "reloaded" {
			t.Fatalf("reload: %s", res)
		}
		if st, body := call(t, "GET", b.api(locate), readToken, ""); st != 200 || !signed(body) {
			t.Errorf("locate with the read token and locate_signs: %d %s, want signed", st, body)
		}
	})
}

// TestSecretsMaskedInLogs: relays pushing a live stream to URLs with a
// stream key, a token and a passphrase log the attempts and errors with
// the secrets masked, and the push status in the API is masked too.
func TestSecretsMaskedInLogs(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "[objects]\nfetch_allow = [\"127.0.0.1/32\"]\n")
	for _, r := range []string{
		`{"id": "rt", "pattern": "live/*", "url": "rtmp://127.0.0.1:1/live2/SECRETKEY9?token=SECRETTOKEN6",
			"start_time": "` + at(-time.Minute) + `", "end_time": "` + at(time.Hour) + `"}`,
		`{"id": "sr", "pattern": "live/*", "url": "srt://127.0.0.1:1?streamid=publish:SECRETKEY8&passphrase=SECRETPASS7x",
			"start_time": "` + at(-time.Minute) + `", "end_time": "` + at(time.Hour) + `"}`,
	} {
		if st, body := call(t, "POST", a.api("/v1/relays"), "", r); st != 201 {
			t.Fatalf("create relay: %d %s", st, body)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testmedia.Publish(t, ctx, testmedia.Source{Realtime: true, Duration: 30 * time.Second}, a.rtmp("live/cam"))
	testmedia.Eventually(t, 15*time.Second, "both pushes to fail and log it", func() bool {
		l := a.logs.String()
		return strings.Contains(l, "rtmp://127.0.0.1:1/live2/********") && strings.Contains(l, "streamid=publish:********")
	})
	_, body := call(t, "GET", a.api("/v1/relays"), "", "")
	for _, s := range []string{"SECRETKEY9", "SECRETTOKEN6", "SECRETKEY8", "SECRETPASS7"} {
		if strings.Contains(a.logs.String(), s) {
			t.Errorf("the log shows %s in clear", s)
		}
		if strings.Contains(body, s) {
			t.Errorf("GET /v1/relays shows %s in clear: %s", s, body)
		}
	}
}
