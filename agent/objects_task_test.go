package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/webhook"
)

// taskHookReceiver is a test webhook endpoint: it checks every signature and
// keeps the task events in arrival order.
type taskHookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	events []string // "event item pass"
	bad    []string
}

func (h *taskHookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(h.secret, r.Header, body); err != nil {
		h.mu.Lock()
		h.bad = append(h.bad, err.Error())
		h.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b struct {
		Event string `json:"event"`
		Data  struct {
			Item *int `json:"item"`
			Loop int  `json:"loop"`
			Task string
		} `json:"data"`
	}
	json.Unmarshal(body, &b)
	if strings.HasPrefix(b.Event, "task.") {
		e := b.Event
		if b.Data.Item != nil {
			e = fmt.Sprintf("%s %d %d", e, *b.Data.Item, b.Data.Loop)
		}
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// newTaskHookReceiver starts a test webhook receiver whose secret is in
// secretFile (under dir); it stops when the test ends.
func newTaskHookReceiver(t *testing.T, dir string) (recv *taskHookReceiver, srv *httptest.Server, secretFile string) {
	t.Helper()
	secret := []byte("task-webhook-secret-0123456789")
	secretFile = filepath.Join(dir, "hook.key")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	recv = &taskHookReceiver{t: t, secret: secret}
	srv = httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	return recv, srv, secretFile
}

func (h *taskHookReceiver) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// TestTaskPlaylistToOwnIngest: a playlist of an ffmpeg-made MP4 (moov at
// the end) served over HTTP and a local FLV file, looped twice, is
// published at real time to the node's own RTMP ingest; a player sees
// H.264 with monotonic timestamps, the task finishes by itself, and the
// webhook receiver gets signed events in order.
func TestTaskPlaylistToOwnIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("plays 8 s of media in real time")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	dir := t.TempDir()
	mp4 := filepath.Join(dir, "a.mp4")
	flv := filepath.Join(dir, "b.flv")
	makeFile(t, mp4, "libx264", "aac") // ffmpeg writes moov after mdat by default
	makeFile(t, flv, "libx264", "aac")
	files := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer files.Close()
	recv, hooks, secretFile := newTaskHookReceiver(t, dir)

	o := startObjAgent(t, func(c *config.Config) {
		c.Webhooks.URL, c.Webhooks.SecretFile = hooks.URL+"/node", secretFile
		allowLoopback(c) // the playlist server and the callback receiver
	})
	dest := "rtmp://" + o.a.listenAddr("rtmp") + "/live/pseudo"
	body := map[string]any{
		"id": "loop2", "loop": 2, "callback": hooks.URL + "/task",
		"source":      map[string]any{"playlist": []string{files.URL + "/a.mp4", flv}},
		"destination": map[string]any{"url": dest},
	}
	var v map[string]any
	if st := o.call(t, "POST", "/v1/tasks", testToken, body, &v); st != 201 || v["state"] != "Stopped" {
		t.Fatalf("create: %d %v", st, v)
	}
	started := time.Now()
	if st := o.call(t, "POST", "/v1/tasks/loop2/start", testToken, nil, &v); st != 200 || v["state"] != "Running" {
		t.Fatalf("start: %d %v", st, v)
	}
	if v["stream"] != "live/pseudo" {
		t.Errorf("task publishes %v, want live/pseudo (own ingest, no network hop)", v["stream"])
	}
	flvURL := "http://" + o.a.listenAddr("http") + "/live/pseudo.flv"
	res, err := testmedia.Read(context.Background(), flvURL, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.Width != 320 || res.NonMonotonic != 0 || res.VideoFrames < 40 {
		t.Errorf("player saw %+v: want h264/aac 320x240, >= 40 frames, monotonic", res)
	}
	testmedia.Eventually(t, 20*time.Second, "task Finished", func() bool {
		o.call(t, "GET", "/v1/tasks/loop2", "", nil, &v)
		return v["state"] == "Finished"
	})
	took := time.Since(started)
	t.Logf("8 s of playlist played in %s (real-time pacing)", took.Round(10*time.Millisecond))
	if took < 7*time.Second {
		t.Errorf("finished after %s: not paced at real time (want >= 8 s)", took)
	}
	want := []string{"task.started", "task.item-changed 0 1", "task.item-changed 1 1", "task.item-changed 0 2", "task.item-changed 1 2", "task.finished"}
	testmedia.Eventually(t, 10*time.Second, "all webhook events", func() bool { return len(recv.seen()) >= len(want) })
	if got := recv.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
	if len(recv.bad) > 0 {
		t.Errorf("bad signatures: %v", recv.bad)
	}
}

// TestTaskStopRestartDelete walks the task actions as the console allows
// them: start only from Stopped, restart and stop only from Running,
// delete only when not Running.
func TestTaskStopRestartDelete(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	dir := t.TempDir()
	flv := filepath.Join(dir, "b.flv")
	makeFile(t, flv, "libx264", "aac")
	o := startObjAgent(t, nil)
	var v map[string]any
	body := map[string]any{"id": "t", "loop": -1, "callback": "http://127.0.0.1:1/hook", "source": map[string]any{"playlist": []string{flv}},
		"destination": map[string]any{"url": "rtmp://" + o.a.listenAddr("rtmp") + "/live/t"}}
	if st := o.call(t, "POST", "/v1/tasks", testToken, body, &v); st != 201 {
		t.Fatalf("create: %d %v", st, v)
	}
	steps := []struct {
		method, path string
		status       int
		state        string
	}{
		{"GET", "/v1/tasks/t", 200, "Stopped"},
		{"POST", "/v1/tasks/t/restart", 409, ""},
		{"POST", "/v1/tasks/t/stop", 409, ""},
		{"POST", "/v1/tasks/t/start", 200, "Running"},
		{"POST", "/v1/tasks/t/start", 409, ""},
		{"DELETE", "/v1/tasks/t", 409, ""},
		{"POST", "/v1/tasks/t/restart", 200, "Running"},
		{"POST", "/v1/tasks/t/restart", 200, "Running"},
		{"POST", "/v1/tasks/t/stop", 200, "Stopped"},
		{"POST", "/v1/tasks/t/restart", 409, ""},
		{"POST", "/v1/tasks/t/start", 200, "Running"},
		{"POST", "/v1/tasks/t/stop", 200, "Stopped"},
		{"DELETE", "/v1/tasks/t", 204, ""},
		{"GET", "/v1/tasks/t", 404, ""},
	}
	for _, s := range steps {
		t.Run(s.method+" "+s.path, func(t *testing.T) {
			v = nil
			st := o.call(t, s.method, s.path, testToken, nil, &v)
			if st != s.status || (s.state != "" && v["state"] != s.state) {
				t.Fatalf("got %d %v, want %d %s", st, v, s.status, s.state)
			}
		})
	}
}

// TestTaskResumesAfterRestart: a running playlist task whose node stops
// while it plays item 1 comes back Running at item 1 of the same pass,
// not at item 0; the webhook sees started then item-changed 1 1.
func TestTaskResumesAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("plays media in real time")
	}
	testmedia.Need(t, "ffmpeg")
	dir := t.TempDir()
	var items []string
	for _, n := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, n+".flv")
		makeFile(t, p, "libx264", "aac")
		items = append(items, p)
	}
	recv, hooks, secretFile := newTaskHookReceiver(t, dir)
	rtmpAddr := fmt.Sprintf("127.0.0.1:%d", testmedia.FreePort(t))
	edit := func(c *config.Config) {
		c.Node.DataDir = filepath.Join(dir, "data")
		c.RTMP.Listen = rtmpAddr
		c.Webhooks.URL, c.Webhooks.SecretFile = hooks.URL+"/node", secretFile
		allowLoopback(c) // the callback receiver
	}
	o := startObjAgent(t, edit)
	body := map[string]any{"id": "resume", "loop": 2, "callback": hooks.URL + "/task",
		"source":      map[string]any{"playlist": items},
		"destination": map[string]any{"url": "rtmp://" + rtmpAddr + "/live/resume"}}
	var v struct {
		State  string `json:"state"`
		Item   int    `json:"item"`
		Pass   int    `json:"pass"`
		Stream string `json:"stream"`
	}
	if st := o.call(t, "POST", "/v1/tasks", testToken, body, &v); st != 201 {
		t.Fatalf("create: %d %+v", st, v)
	}
	if st := o.call(t, "POST", "/v1/tasks/resume/start", testToken, nil, &v); st != 200 {
		t.Fatalf("start: %d %+v", st, v)
	}
	testmedia.Eventually(t, 10*time.Second, "item 1 playing", func() bool {
		o.call(t, "GET", "/v1/tasks/resume", "", nil, &v)
		return v.Item == 1
	})
	o.stop()
	testmedia.Eventually(t, 5*time.Second, "events before the restart delivered", func() bool {
		return len(recv.seen()) >= 3
	})
	before := len(recv.seen())

	b := startObjAgent(t, edit)
	b.call(t, "GET", "/v1/tasks/resume", "", nil, &v)
	if v.State != "Running" || v.Item != 1 || v.Pass != 1 {
		t.Errorf("after the restart: %+v, want Running at item 1 of pass 1", v)
	}
	testmedia.Eventually(t, 5*time.Second, "events after the restart", func() bool { return len(recv.seen()) >= before+2 })
	got := recv.seen()[before:][:2]
	if want := []string{"task.started", "task.item-changed 1 1"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events after the restart %q, want %q (all: %q)", got, want, recv.seen())
	}
	testmedia.Eventually(t, 10*time.Second, "the playlist goes on to item 2", func() bool {
		b.call(t, "GET", "/v1/tasks/resume", "", nil, &v)
		return v.Item == 2 && v.Pass == 1
	})
}

// TestTaskLiveURL: a task whose source is a live URL (RTMP or HTTP-FLV of
// a second relaymesh fed by ffmpeg) pushes it to this node's own ingest:
// a player sees the frames, the task is Running until stopped, and the
// webhook gets started then stopped.
func TestTaskLiveURL(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publisher")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	remote := startObjAgent(t, nil) // the live source's server
	ctx := context.Background()
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 30 * time.Second}.Defaults()
	testmedia.Publish(t, ctx, src, "rtmp://"+remote.a.listenAddr("rtmp")+"/live/src")
	remote.waitVideo(t, "live/src")

	cases := []struct{ name, url string }{
		{"rtmp", "rtmp://" + remote.a.listenAddr("rtmp") + "/live/src"},
		{"httpflv", "http://" + remote.a.listenAddr("http") + "/live/src.flv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			recv, hooks, secretFile := newTaskHookReceiver(t, dir)
			o := startObjAgent(t, func(c *config.Config) {
				c.Webhooks.URL, c.Webhooks.SecretFile = hooks.URL+"/node", secretFile
				allowLoopback(c) // the live source and the callback receiver
			})
			body := map[string]any{"id": "live", "callback": hooks.URL + "/task",
				"source":      map[string]any{"url": c.url},
				"destination": map[string]any{"url": "rtmp://" + o.a.listenAddr("rtmp") + "/live/out"}}
			var v map[string]any
			if st := o.call(t, "POST", "/v1/tasks", testToken, body, &v); st != 201 {
				t.Fatalf("create: %d %v", st, v)
			}
			if st := o.call(t, "POST", "/v1/tasks/live/start", testToken, nil, &v); st != 200 || v["state"] != "Running" {
				t.Fatalf("start: %d %v", st, v)
			}
			o.waitVideo(t, "live/out")
			res, err := testmedia.Read(ctx, "http://"+o.a.listenAddr("http")+"/live/out.flv", 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.VideoFrames < 40 || res.NonMonotonic != 0 {
				t.Errorf("player of the task's stream saw %+v: want h264/aac, >= 40 frames, monotonic", res)
			}
			if st := o.call(t, "GET", "/v1/tasks/live", "", nil, &v); st != 200 || v["state"] != "Running" {
				t.Errorf("while pulling: %d %v, want Running", st, v)
			}
			if st := o.call(t, "POST", "/v1/tasks/live/stop", testToken, nil, &v); st != 200 || v["state"] != "Stopped" {
				t.Fatalf("stop: %d %v", st, v)
			}
			want := []string{"task.started", "task.stopped"}
			testmedia.Eventually(t, 10*time.Second, "webhook events", func() bool { return len(recv.seen()) >= len(want) })
			if got := recv.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("events %q, want %q", got, want)
			}
			if len(recv.bad) > 0 {
				t.Errorf("bad signatures: %v", recv.bad)
			}
		})
	}
}
