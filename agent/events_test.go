package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/webhook"
)

// hookSink is a webhook receiver: it verifies each request's signature
// and keeps the bodies in arrival order.
type hookSink struct {
	srv    *httptest.Server
	secret string // path of the secret file the agent signs with
	mu     sync.Mutex
	got    []webhook.Body
	at     []time.Time // when each of got arrived
	errs   []error
}

func newHookSink(t *testing.T) *hookSink {
	t.Helper()
	key := []byte("events-test-webhook-secret-32by!")
	s := &hookSink{secret: filepath.Join(t.TempDir(), "hook.key")}
	if err := os.WriteFile(s.secret, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b webhook.Body
		err := webhook.Verify(key, r.Header, body)
		if err == nil {
			err = json.Unmarshal(body, &b)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.errs = append(s.errs, err)
			return
		}
		s.got = append(s.got, b)
		s.at = append(s.at, time.Now())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// config is the [webhooks] section that points an agent here.
func (s *hookSink) config() string {
	return fmt.Sprintf("[webhooks]\nurl = %q\nsecret_file = %q\n", s.srv.URL, s.secret)
}

// hook is one received event: its name and its data.
type hook struct {
	Event string
	Node  string
	Data  map[string]any
	At    time.Time // when the receiver got it
}

// events returns what arrived, in order; with names, only those events.
func (s *hookSink) events(t *testing.T, names ...string) []hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		t.Errorf("the receiver refused requests: %v", s.errs)
	}
	var out []hook
	for i, b := range s.got {
		keep := len(names) == 0
		for _, n := range names {
			keep = keep || b.Event == n
		}
		if !keep {
			continue
		}
		h := hook{Event: b.Event, Node: b.Node, At: s.at[i]}
		if err := json.Unmarshal(b.Data, &h.Data); err != nil {
			t.Errorf("%s data %s: %v", b.Event, b.Data, err)
		}
		out = append(out, h)
	}
	return out
}

// waitFor polls until an event named name whose data has every field of
// want arrived, and returns it.
func (s *hookSink) waitFor(t *testing.T, d time.Duration, name string, want map[string]any) hook {
	t.Helper()
	var found hook
	testmedia.Eventually(t, d, fmt.Sprintf("webhook %s %v", name, want), func() bool {
		for _, h := range s.events(t, name) {
			if matches(h.Data, want) {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

func matches(data, want map[string]any) bool {
	for k, v := range want {
		if fmt.Sprint(data[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// TestWebhookMemberJoinLeave: two relaymesh binaries on loopback; the
// first one's webhook receiver hears member.join when the second joins
// and member.leave when it stops.
func TestWebhookMemberJoinLeave(t *testing.T) {
	sink := newHookSink(t)
	gossipA, gossipB := testmedia.FreePort(t), testmedia.FreePort(t)
	cluster := func(port int, seed string) string {
		s := fmt.Sprintf("[cluster]\nenabled = true\nbind = \"127.0.0.1:%d\"\n", port)
		if seed != "" {
			s += fmt.Sprintf("seeds = [%q]\n", seed)
		}
		return s
	}
	a := startNamedAgent(t, "node-a", cluster(gossipA, "")+sink.config())
	started := time.Now()
	b := startNamedAgent(t, "node-b", cluster(gossipB, fmt.Sprintf("127.0.0.1:%d", gossipA)))

	join := sink.waitFor(t, 15*time.Second, "member.join", map[string]any{"member": "node-b"})
	if join.Node != "node-a" || join.Data["role"] != "standalone" || join.Data["addr"] != fmt.Sprintf("127.0.0.1:%d", gossipB) {
		t.Errorf("member.join = %+v, want sent by node-a about node-b (standalone, 127.0.0.1:%d)", join, gossipB)
	}
	t.Logf("member.join received %s after node-b answered /healthz", join.At.Sub(started).Round(time.Millisecond))

	// node-b's own join completes (it knows node-a) before it stops: a
	// node that leaves while its join is under way has nobody to tell
	testmedia.Eventually(t, 15*time.Second, "node-b lists node-a alive", func() bool {
		var v struct {
			Nodes []struct{ Name, State string } `json:"nodes"`
		}
		getJSON(t, b.api("/v1/nodes"), &v)
		for _, n := range v.Nodes {
			if n.Name == "node-a" && n.State == "alive" {
				return true
			}
		}
		return false
	})
	stopped := time.Now()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("node-b still running 20 s after SIGTERM")
	}
	leave := sink.waitFor(t, 15*time.Second, "member.leave", map[string]any{"member": "node-b", "state": "left"})
	t.Logf("member.leave received %s after SIGTERM", leave.At.Sub(stopped).Round(time.Millisecond))
	var order []string
	for _, h := range sink.events(t, "member.join", "member.leave") {
		order = append(order, h.Event+" "+fmt.Sprint(h.Data["member"]))
	}
	if want := []string{"member.join node-b", "member.leave node-b"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("member events %q, want %q", order, want)
	}
	_ = a
}

// TestWebhookFlowFailover: a flow with an RTMP primary and backup; the
// primary's ffmpeg is killed and stream.failover arrives with the flow id
// and primary->backup; the primary publishes again and the return arrives
// as backup->primary.
func TestWebhookFlowFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	testmedia.Need(t, "ffmpeg")
	sink := newHookSink(t)
	a := startAgent(t, sink.config())
	flowBody := map[string]any{"id": "fo",
		"source":  map[string]any{"type": "rtmp-push", "stream": "live/primary"},
		"backup":  map[string]any{"type": "rtmp-push", "stream": "live/backup"},
		"outputs": []any{map[string]any{"name": "players", "type": "rtmp-pull"}}}
	if st := send(t, "POST", a.api("/v1/flows"), flowBody, nil); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if st := send(t, "POST", a.api("/v1/flows/fo/start"), nil, nil); st != 200 {
		t.Fatalf("start: %d", st)
	}
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Duration: 60 * time.Second, GOP: 25}.Defaults()
	primary := testmedia.Publish(t, ctx, src, a.rtmp("live/primary"))
	testmedia.Publish(t, ctx, src, a.rtmp("live/backup"))
	waitSent := func(what string) {
		testmedia.Eventually(t, 15*time.Second, what, func() bool {
			var v struct {
				Status *struct {
					Active  string `json:"active_source"`
					Sources []struct {
						Live bool `json:"live"`
					} `json:"sources"`
				} `json:"status"`
			}
			send(t, "GET", a.api("/v1/flows/fo"), nil, &v)
			return v.Status != nil && v.Status.Active == "primary" && len(v.Status.Sources) == 2 && v.Status.Sources[0].Live && v.Status.Sources[1].Live
		})
	}
	waitSent("both sources live, primary active")
	before := len(sink.events(t, "stream.failover"))

	killed := time.Now()
	primary.Cmd.Process.Kill()
	fo := sink.waitFor(t, 10*time.Second, "stream.failover", map[string]any{"flow": "fo", "direction": "primary->backup"})
	t.Logf("stream.failover received %s after the primary was killed (gap_ms %v)", fo.At.Sub(killed).Round(time.Millisecond), fo.Data["gap_ms"])
	if want := map[string]any{"stream": "flow/fo", "from": "primary", "to": "backup", "reason": "silence"}; !matches(fo.Data, want) {
		t.Errorf("stream.failover = %v, want %v", fo.Data, want)
	}

	// the primary comes back: the return is sent too (its reason is
	// "primary back", or "silence" when a starved backup stalls first)
	testmedia.Publish(t, ctx, src, a.rtmp("live/primary"))
	testmedia.Eventually(t, 15*time.Second, "stream.failover backup->primary after the kill", func() bool {
		for _, h := range sink.events(t, "stream.failover")[before:] {
			if matches(h.Data, map[string]any{"flow": "fo", "direction": "backup->primary", "from": "backup", "to": "primary"}) {
				t.Logf("return: %v", h.Data)
				return true
			}
		}
		return false
	})
}

// TestWebhookShutdownFlush: a stream live when the agent gets SIGTERM is
// ended by the drain, and its stream.unpublished reaches the receiver
// before the process exits.
func TestWebhookShutdownFlush(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	sink := newHookSink(t)
	a := startAgent(t, sink.config())
	src := testmedia.Source{Realtime: true, Duration: time.Minute, GOP: 25}.Defaults()
	testmedia.Publish(t, context.Background(), src, a.rtmp("live/bye"))
	sink.waitFor(t, 10*time.Second, "stream.published", map[string]any{"stream": "live/bye"})
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("agent still running 20 s after SIGTERM")
	}
	var got []string
	for _, h := range sink.events(t, "stream.published", "stream.unpublished") {
		got = append(got, fmt.Sprint(h.Event, " ", h.Data["stream"], " ", h.Data["reason"]))
	}
	want := []string{"stream.published live/bye <nil>", "stream.unpublished live/bye server is shutting down"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("webhooks by exit %q, want %q", got, want)
	}
}
