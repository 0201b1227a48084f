package agent_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/task"
)

// internalSecret is what the "internal" servers answer: no error message
// may quote it.
const internalSecret = "AKIA-INTERNAL-CREDENTIALS"

func secretServer(t *testing.T, addr string) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, internalSecret)
	})}}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func playlistTask(id string, items ...string) task.Spec {
	return task.Spec{ID: id, Source: task.Source{Playlist: items},
		Destination: task.Destination{URL: "rtmp://127.0.0.1:1/live/" + id}, Callback: noCallback}
}

// client is a typed client of p's API (no token: p's API is on loopback
// without a token file).
func (p *agentProc) client(opts ...client.Option) *client.Client {
	return client.New(p.api(""), opts...)
}

// refused reports whether err is an API answer of status saying msg.
func refused(err error, status int, msg string) bool {
	p := client.ProblemOf(err)
	return p != nil && p.Status == status && strings.Contains(p.Message, msg)
}

// startTask creates and starts a task whose playlist needs downloads (the
// start answers at once: preparing, or already failed when the refusal
// was quick) and returns the task once preparing is over (Running or
// Failed with the reason).
func startTask(t *testing.T, a *agentProc, id string, items ...string) task.View {
	t.Helper()
	tasks := a.client().Tasks()
	if _, err := tasks.Create(t.Context(), playlistTask(id, items...)); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	if _, err := tasks.Do(t.Context(), id, "start"); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	var v task.View
	testmedia.Eventually(t, 20*time.Second, id+" prepared", func() bool {
		var err error
		v, err = tasks.Get(t.Context(), id)
		return err == nil && v.Phase == ""
	})
	return v
}

// TestFetchPolicyRefuses: by default a task cannot fetch from loopback
// (an internal service, a metadata-like endpoint) nor be redirected
// there, the extension check reads the URL path and not a fragment, and
// no answer or log quotes the internal response.
func TestFetchPolicyRefuses(t *testing.T) {
	metadata := secretServer(t, "127.0.0.2:0") // stands for 169.254.169.254 / an internal API
	var hooked atomic.Int32
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hooked.Add(1) }))
	defer hooks.Close()
	a := startAgent(t, "")
	tasks := a.client().Tasks()

	t.Run("fragment does not pass the extension check", func(t *testing.T) {
		if _, err := tasks.Create(t.Context(), playlistTask("frag", a.api("/metrics#.mp4"))); !refused(err, 400, "not an .mp4") {
			t.Errorf("create with .../metrics#.mp4: %v, want 400 naming the extension", err)
		}
	})
	cases := []struct {
		name, item, reason string
	}{
		{"metadata-like loopback URL", metadata.URL + "/latest/meta-data/iam.mp4", "refused by the outbound fetch policy"},
		{"the node's own API", a.api("/metrics.mp4"), "refused by the outbound fetch policy"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := startTask(t, a, fmt.Sprintf("ssrf-%d", i), c.item)
			msg := v.Reason
			if v.State != "Failed" || !strings.Contains(msg, c.reason) {
				t.Errorf("task: %+v, want Failed saying %q", v, c.reason)
			}
			if strings.Contains(msg, internalSecret) {
				t.Errorf("the refusal quotes the internal response: %s", msg)
			}
		})
	}
	t.Run("callback to loopback", func(t *testing.T) {
		spec := playlistTask("hooked", metadata.URL+"/x.mp4")
		spec.Callback = hooks.URL + "/task"
		if _, err := tasks.Create(t.Context(), spec); err != nil {
			t.Fatalf("create: %v", err)
		}
		tasks.Do(t.Context(), "hooked", "start") // fails: an event for the callback
		testmedia.Eventually(t, 10*time.Second, "the webhook refused by the policy", func() bool {
			for _, l := range testmedia.Lines(a.logs.String()) {
				if strings.Contains(l, "webhook event not delivered") && strings.Contains(l, "refused by the outbound fetch policy") {
					return true
				}
			}
			return false
		})
		if n := hooked.Load(); n != 0 {
			t.Errorf("the loopback callback received %d requests", n)
		}
	})
	if strings.Contains(a.logs.String(), internalSecret) {
		t.Errorf("the agent log quotes the internal response")
	}
}

// TestFetchPolicyAllowAndCaps: fetch_allow opens its CIDRs and fetch_deny
// closes its own within them (a redirect there included), an error status is reported without the body, max_download
// caps an item, and a deleted task's download is removed.
func TestFetchPolicyAllowAndCaps(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	inner := secretServer(t, "127.0.0.2:0")
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	if b, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	big := make([]byte, 3<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/clip.mp4", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, clip) })
	mux.HandleFunc("/big.mp4", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/gone.mp4", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintln(w, internalSecret)
	})
	mux.Handle("/redirect.mp4", http.RedirectHandler(inner.URL+"/x.mp4", http.StatusFound))
	files := httptest.NewServer(mux) // on 127.0.0.1
	defer files.Close()
	a := startAgent(t, `[objects]
fetch_allow = ["127.0.0.0/8"]
fetch_deny = ["127.0.0.2/32"]
max_download = "1MiB"
`)
	cases := []struct {
		name, item string
		want       string
		reason     string
	}{
		{"allowed", files.URL + "/clip.mp4", "Running", ""},
		{"redirect to a denied address", files.URL + "/redirect.mp4", "Failed", "objects.fetch_deny has 127.0.0.2/32"},
		{"error status without the body", files.URL + "/gone.mp4", "Failed", "HTTP 403"},
		{"over max_download", files.URL + "/big.mp4", "Failed", "objects.max_download"},
		{"fetch_deny beats fetch_allow", inner.URL + "/x.mp4", "Failed", "objects.fetch_deny has 127.0.0.2/32"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := startTask(t, a, fmt.Sprintf("fetch-%d", i), c.item)
			if v.State != c.want || !strings.Contains(v.Reason, c.reason) || strings.Contains(v.Reason, internalSecret) {
				t.Errorf("task: %+v, want %s saying %q", v, c.want, c.reason)
			}
		})
	}
	cache := filepath.Join(filepath.Dir(a.cfg), "data", "task-cache")
	cached := func() []string {
		ents, _ := os.ReadDir(cache)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := cached(); len(got) != 1 {
		t.Fatalf("task cache holds %v, want the one downloaded clip (no partial or oversized file)", got)
	}
	tasks := a.client().Tasks()
	tasks.Do(t.Context(), "fetch-0", "stop")
	testmedia.Eventually(t, 10*time.Second, "the task to stop", func() bool {
		v, err := tasks.Get(t.Context(), "fetch-0")
		return err == nil && v.State == "Stopped"
	})
	if err := tasks.Delete(t.Context(), "fetch-0"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := cached(); len(got) != 0 {
		t.Errorf("task cache after deleting the task: %v, want empty", got)
	}
}

// TestObjectCaps: objects.max_outputs caps a flow's outputs, on create and
// on update; a playlist item and a request body have their caps too.
func TestObjectCaps(t *testing.T) {
	a := startAgent(t, `[objects]
max_outputs = 2
max_api_body = "8KiB"
`)
	spec := func(n int) flow.Spec {
		s := flow.Spec{ID: "capped", Source: flow.Source{Type: flow.SrcRTMPPush, Stream: "live/in"}}
		for i := range n {
			s.Outputs = append(s.Outputs, flow.Output{Name: fmt.Sprintf("o%d", i), Type: flow.OutHTTPFLV})
		}
		return s
	}
	c := a.client()
	cases := []struct {
		name string
		do   func(ctx context.Context) error
		want int // the refusal's status; 0: accepted
		msg  string
	}{
		{"three outputs", func(ctx context.Context) error { _, err := c.Flows().Create(ctx, spec(3)); return err }, 400, "objects.max_outputs"},
		{"two outputs", func(ctx context.Context) error { _, err := c.Flows().Create(ctx, spec(2)); return err }, 0, ""},
		{"update to three", func(ctx context.Context) error { _, err := c.Flows().Update(ctx, "capped", spec(3)); return err }, 400, "objects.max_outputs"},
		{"long playlist item", func(ctx context.Context) error {
			_, err := c.Tasks().Create(ctx, playlistTask("long", "/srv/"+strings.Repeat("a", 5000)+".mp4"))
			return err
		}, 400, "more than 4096"},
		{"body over max_api_body", func(ctx context.Context) error {
			_, err := c.Tasks().Create(ctx, playlistTask("big", "/srv/"+strings.Repeat("b", 9000)+".mp4"))
			return err
		}, 400, "objects.max_api_body"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			err := cs.do(t.Context())
			if cs.want == 0 && err != nil || cs.want != 0 && !refused(err, cs.want, cs.msg) {
				t.Errorf("%v, want %d saying %q (0: accepted)", err, cs.want, cs.msg)
			}
		})
	}
}

// slowServer sends a 1 MB "file" at one byte a second: a download that
// never finishes within a test.
func slowServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}))
	t.Cleanup(func() { s.CloseClientConnections(); s.Close() })
	return s
}

// TestSlowPlaylistDoesNotBlock: starting a task whose playlist crawls in
// at 1 byte/s answers at once with the task preparing, the API keeps
// serving, a stop ends the download, and a restart with the task saved
// while preparing serves at once and prepares it again in the background.
func TestSlowPlaylistDoesNotBlock(t *testing.T) {
	slow := slowServer(t)
	a := startAgent(t, "[objects]\nfetch_allow = [\"127.0.0.1/32\"]\n")
	c := a.client()
	tasks := c.Tasks()
	if _, err := tasks.Create(t.Context(), playlistTask("slow", slow.URL+"/big.mp4")); err != nil {
		t.Fatalf("create: %v", err)
	}
	if v, err := tasks.Do(t.Context(), "slow", "start"); err != nil || v.Phase != "preparing" || v.Internal != lifecycle.Starting {
		t.Fatalf("start: %+v, %v; want the task starting, phase preparing", v, err)
	}
	// the API serves while the download crawls: reads and writes
	if _, err := c.Streams(t.Context()); err != nil {
		t.Errorf("GET /v1/streams while a download crawls: %v", err)
	}
	if _, err := tasks.Create(t.Context(), playlistTask("other", "/srv/a.mp4")); err != nil {
		t.Errorf("create while a download crawls: %v", err)
	}
	if v, err := tasks.Do(t.Context(), "slow", "stop"); err != nil || v.State != "Stopped" {
		t.Fatalf("stop while preparing: %+v, %v; want Stopped", v, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(filepath.Dir(a.cfg), "data", "task-cache")); len(ents) != 0 {
		t.Errorf("a stopped download left %d files in the task cache", len(ents))
	}

	// saved while preparing, then kill -9: the restarted agent serves at
	// once and prepares the task in the background
	if v, err := tasks.Do(t.Context(), "slow", "start"); err != nil || v.Phase != "preparing" {
		t.Fatalf("second start: %+v, %v", v, err)
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	b := a.restart(t) // fails unless /healthz answers while the download crawls
	// preparing again in the background; a node that treats a start cut
	// short by a crash as failed (issue 11) shows it Failed instead: both
	// are fine, waiting for the download before serving is not
	if v, err := b.client().Tasks().Get(t.Context(), "slow"); err != nil || v.Phase != "preparing" && v.State != "Failed" {
		t.Errorf("after the restart: %+v, %v; want the task preparing again (or failed)", v, err)
	}
}

// TestFetchPolicyFlows: a flow's HTTP-FLV pull source is held to the
// policy at dial time; the status says so without quoting the internal
// server's answer.
func TestFetchPolicyFlows(t *testing.T) {
	internal := secretServer(t, "127.0.0.2:0")
	a := startAgent(t, "")
	flows := a.client().Flows()
	spec := flow.Spec{ID: "pull", Source: flow.Source{Type: flow.SrcHTTPFLVPull, URL: internal.URL + "/live/x.flv"},
		Outputs: []flow.Output{{Name: "players", Type: flow.OutHTTPFLV}}}
	if _, err := flows.Create(t.Context(), spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(t.Context(), "pull", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	var pullErr string
	testmedia.Eventually(t, 10*time.Second, "the pull refused by the policy", func() bool {
		f, err := flows.Get(t.Context(), "pull")
		if err == nil && f.Status != nil && len(f.Status.Sources) > 0 && f.Status.Sources[0].Pull != nil {
			pullErr = f.Status.Sources[0].Pull.LastError
		}
		return strings.Contains(pullErr, "refused by the outbound fetch policy")
	})
	if strings.Contains(pullErr, internalSecret) || strings.Contains(a.logs.String(), internalSecret) {
		t.Errorf("the internal answer is quoted: %s", pullErr)
	}
}

// TestFetchPolicyOwnListener: with the API on all addresses, a task cannot
// fetch the node's own API through its LAN address.
func TestFetchPolicyOwnListener(t *testing.T) {
	var lan string
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			lan = n.IP.String()
			break
		}
	}
	if lan == "" {
		t.Skip("no non-loopback IPv4 address on this host to reach the node's own API by")
	}
	a := startAgent(t, "")
	admin := writeFile(t, filepath.Join(filepath.Dir(a.cfg), "api.token"), adminToken)
	b := moveAPI(t, a, fmt.Sprintf("token_file = %q", admin))
	item := fmt.Sprintf("http://%s:%d/metrics.mp4", lan, b.ports["api"])
	tasks := b.client(client.WithToken(adminToken)).Tasks()
	spec := playlistTask("own", item)
	spec.Destination.URL = "rtmp://192.0.2.200/live/x"
	if _, err := tasks.Create(t.Context(), spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := tasks.Do(t.Context(), "own", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	var v task.View
	testmedia.Eventually(t, 10*time.Second, "the task to fail", func() bool {
		var err error
		v, err = tasks.Get(t.Context(), "own")
		return err == nil && v.State == "Failed"
	})
	if !strings.Contains(v.Reason+" "+v.LastError, "one of this node's own listeners") {
		t.Errorf("task: %+v, want it refused as the node's own listener", v)
	}
}

// TestDownloadTimeout: objects.download_timeout ends a download that
// crawls; the task fails saying so.
func TestDownloadTimeout(t *testing.T) {
	slow := slowServer(t)
	a := startAgent(t, "[objects]\nfetch_allow = [\"127.0.0.1/32\"]\ndownload_timeout = \"1s\"\n")
	v := startTask(t, a, "crawl", slow.URL+"/big.mp4")
	if v.State != "Failed" || !strings.Contains(v.Reason, "objects.download_timeout") {
		t.Errorf("task: %+v, want Failed naming objects.download_timeout", v)
	}
}
