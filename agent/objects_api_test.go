package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/lifecycle"
)

const testToken = "0123456789abcdef-objects-token"

type objAgent struct {
	a    *Agent
	base string
	cfg  *config.Config
	logs *testmedia.LogBuffer // the agent's JSON log lines
	stop func()               // ends the agent (also at cleanup); idempotent
}

// startObjAgent runs an in-process agent on loopback ports with an API
// token; edit may change the config first.
func startObjAgent(t *testing.T, edit func(c *config.Config)) *objAgent {
	t.Helper()
	dir := t.TempDir()
	c := config.Default()
	c.Node.Name = "objects-test"
	c.Node.DataDir = filepath.Join(dir, "data")
	c.RTMP.Listen, c.HTTP.Listen, c.SRT.Listen, c.API.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.WebRTC.UDPListen = "127.0.0.1:0"
	c.Limits.ReconnectGrace = config.Duration(500 * time.Millisecond)
	c.API.TokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(c.API.TokenFile, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testmedia.LogBuffer{}
	a, err := New(c, "", logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &objAgent{a: a, base: "http://" + a.listenAddr("api"), cfg: c, logs: logs, stop: stop}
}

// client is a typed client of the agent's API, with the token.
func (o *objAgent) client() *client.Client { return client.New(o.base, client.WithToken(testToken)) }

// call sends a JSON request with the token (unless tok is "") and decodes
// the answer into out (when not nil); it returns the status.
func (o *objAgent) call(t *testing.T, method, path, tok string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, o.base+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func future(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }

// TestObjectsAPIErrors: every bad input gets its own status, code and field.
func TestObjectsAPIErrors(t *testing.T) {
	dir := t.TempDir()
	mp3 := filepath.Join(dir, "mp3.mp4")
	testmedia.Need(t, "ffmpeg")
	makeFile(t, mp3, "libx264", "libmp3lame")
	o := startObjAgent(t, func(c *config.Config) {
		c.Objects.MaxRelays = 2
		c.Tasks = []config.TaskConfig{{ID: "from-file", Playlist: []string{"/srv/a.mp4"}, Destination: "rtmp://127.0.0.1/live/x", Callback: "http://127.0.0.1:1/hook"}}
	})
	outputs := `"outputs":[{"name":"o1","type":"rtmp-pull"}]`
	// fixtures the refusals below run into
	setup := []struct{ method, path, body string }{
		{"POST", "/v1/flows", `{"id":"f1","source":{"type":"rtmp-push","stream":"live/in1"},` + outputs + `}`},
		{"POST", "/v1/flows", `{"id":"empty","source":{"type":"rtmp-push","stream":"live/in2"}}`},
		{"POST", "/v1/flows", `{"id":"running","source":{"type":"rtmp-push","stream":"live/in3"},` + outputs + `}`},
		{"POST", "/v1/flows/running/start", ""},
		{"POST", "/v1/relays", `{"id":"r1","pattern":"live/*","url":"rtmp://127.0.0.1:1/x/y","start_time":"` + future(-time.Minute) + `","end_time":"` + future(time.Hour) + `"}`},
		{"POST", "/v1/relays", `{"id":"r2","pattern":"live/a","url":"srt://127.0.0.1:1?streamid=publish:x/y","start_time":"` + future(-time.Minute) + `","end_time":"` + future(time.Hour) + `"}`},
		{"POST", "/v1/tasks", `{"id":"t-mp3","callback":"http://127.0.0.1:1/hook","source":{"playlist":["` + mp3 + `"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"}}`},
		{"POST", "/v1/tasks", `{"id":"t-stopped","callback":"http://127.0.0.1:1/hook","source":{"playlist":["/srv/x.flv"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"}}`},
	}
	for _, s := range setup {
		var e apiError
		if st := o.call(t, s.method, s.path, testToken, s.body, &e); st >= 300 {
			t.Fatalf("setup %s %s: %d %+v", s.method, s.path, st, e)
		}
	}
	// t-stopped2: a Stopped task made through the manager (no callback), for
	// the Stopped edit rules.
	o.a.objects.tasks.Create(taskSpecJSON(t, `{"id":"t-stopped2","source":{"playlist":["/srv/x.flv"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"}}`), lifecycle.CreateOpts{From: lifecycle.FromStore, State: lifecycle.Standby})

	relay := func(extra string) string {
		return `{"id":"rx","pattern":"live/*","url":"rtmp://h/a/b",` + extra + `}`
	}
	win := `"start_time":"` + future(-time.Minute) + `","end_time":"` + future(time.Hour) + `"`
	cases := []struct {
		name, method, path, body string
		noToken                  bool
		status                   int
		code, field              string
	}{
		{"no token", "POST", "/v1/flows", `{}`, true, 401, "unauthorized", ""},
		{"wrong token", "POST", "/v1/flows/f1/start", ``, true, 401, "unauthorized", ""},
		{"not JSON", "POST", "/v1/flows", `{"id":`, false, 400, "invalid", ""},
		{"filter on flows", "GET", "/v1/flows?name=x", ``, false, 400, "invalid", "name"},
		{"filter on relays", "GET", "/v1/relays?id=r1", ``, false, 400, "invalid", "id"},
		{"unknown field", "POST", "/v1/flows", `{"id":"x","colour":"red"}`, false, 400, "invalid", "colour"},
		{"wrong type", "POST", "/v1/flows", `{"id":7}`, false, 400, "invalid", "id"},
		{"bad id", "POST", "/v1/flows", `{"id":"no spaces","source":{"type":"rtmp-push"}}`, false, 400, "invalid", "id"},
		{"unknown source type", "POST", "/v1/flows", `{"id":"x","source":{"type":"webrtc"}}`, false, 400, "invalid", "source.type"},
		{"pull without url", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-pull"}}`, false, 400, "invalid", "source.url"},
		{"pull with http url", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-pull","url":"http://h/a/b"}}`, false, 400, "invalid", "source.url"},
		{"push source with url", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-push","url":"rtmp://h/a/b"}}`, false, 400, "invalid", "source.url"},
		{"flow source without output", "POST", "/v1/flows", `{"id":"x","source":{"type":"flow","flow":"nope"}}`, false, 400, "invalid", "source.flow"},
		{"flow source bad node", "POST", "/v1/flows", `{"id":"x","source":{"type":"flow","flow":"nope","output":"o","node":"a b"}}`, false, 400, "invalid", "source.node"},
		{"backup on the primary's stream", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-push","stream":"live/s"},"backup":{"type":"rtmp-push","stream":"live/s"}}`, false, 400, "invalid", "backup.stream"},
		{"short passphrase", "POST", "/v1/flows", `{"id":"x","source":{"type":"srt-listener","passphrase":"short"}}`, false, 400, "invalid", "source.passphrase"},
		{"bad key length", "POST", "/v1/flows", `{"id":"x","source":{"type":"srt-caller","url":"srt://h:1?streamid=read:a/b","pbkeylen":20}}`, false, 400, "invalid", "source.pbkeylen"},
		{"bad allowlist", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-push","allow":["10.0.0.0/33"]}}`, false, 400, "invalid", "source.allow[0]"},
		{"push output with http url", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-push"},"outputs":[{"name":"a","type":"rtmp-push","url":"http://h/a"}]}`, false, 400, "invalid", "outputs[0].url"},
		{"duplicate output name", "POST", "/v1/flows", `{"id":"x","source":{"type":"rtmp-push"},"outputs":[{"name":"a","type":"httpflv"},{"name":"a","type":"rtmp-pull"}]}`, false, 400, "invalid", "outputs[1].name"},
		{"duplicate flow id", "POST", "/v1/flows", `{"id":"f1","source":{"type":"rtmp-push","stream":"live/zz"}}`, false, 409, "exists", "id"},
		{"start without outputs", "POST", "/v1/flows/empty/start", ``, false, 409, "conflict", "outputs"},
		{"outputs edited while running", "PUT", "/v1/flows/running", `{"source":{"type":"rtmp-push","stream":"live/in3"},"outputs":[]}`, false, 409, "conflict", "outputs"},
		{"running flow deleted", "DELETE", "/v1/flows/running", ``, false, 409, "conflict", "state"},
		{"stop a stopped flow", "POST", "/v1/flows/f1/stop", ``, false, 409, "conflict", "state"},
		{"id changed by update", "PUT", "/v1/flows/f1", `{"id":"f2","source":{"type":"rtmp-push"}}`, false, 400, "invalid", "id"},
		{"no such flow", "GET", "/v1/flows/nope", ``, false, 404, "not_found", ""},

		{"relay window of 7 days", "POST", "/v1/relays", relay(`"start_time":"` + future(0) + `","end_time":"` + future(7*24*time.Hour) + `"`), false, 400, "invalid", "end_time"},
		{"relay ended", "POST", "/v1/relays", relay(`"start_time":"` + future(-2*time.Hour) + `","end_time":"` + future(-time.Hour) + `"`), false, 400, "invalid", "end_time"},
		{"relay without start", "POST", "/v1/relays", relay(`"end_time":"` + future(time.Hour) + `"`), false, 400, "invalid", "start_time"},
		{"relay bad time", "POST", "/v1/relays", relay(`"start_time":"tomorrow"`), false, 400, "invalid", ""},
		{"relay bad pattern", "POST", "/v1/relays", `{"id":"rx","pattern":"live","url":"rtmp://h/a/b",` + win + `}`, false, 400, "invalid", "pattern"},
		{"relay http url", "POST", "/v1/relays", `{"id":"rx","pattern":"live/*","url":"http://h/a/b",` + win + `}`, false, 400, "invalid", "url"},
		{"relay limit", "POST", "/v1/relays", relay(win), false, 429, "limit", ""},

		{"task url and playlist", "POST", "/v1/tasks", `{"id":"x","source":{"url":"rtmp://h/a/b","playlist":["/a.mp4"]},"destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "source"},
		{"task without source", "POST", "/v1/tasks", `{"id":"x","destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "source"},
		{"task 31 items", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":[` + strings.Repeat(`"/a.mp4",`, 30) + `"/a.mp4"]},"destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "source.playlist"},
		{"task relative path", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":["a.mp4"]},"destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "source.playlist[0]"},
		{"task not mp4 or flv", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":["/a.mp4","http://h/b.mkv"]},"destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "source.playlist[1]"},
		{"task http destination", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":["/a.mp4"]},"destination":{"url":"http://h/a/b"}}`, false, 400, "invalid", "destination.url"},
		{"task loop -2", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":["/a.mp4"]},"loop":-2,"destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "loop"},
		{"task ftp callback", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":["/a.mp4"]},"callback":"ftp://h/x","destination":{"url":"rtmp://h/a/b"}}`, false, 400, "invalid", "callback"},
		{"task end before start", "POST", "/v1/tasks", `{"id":"x","source":{"playlist":["/a.mp4"]},"destination":{"url":"rtmp://h/a/b"},"start_time":"` + future(2*time.Hour) + `","end_time":"` + future(time.Hour) + `"}`, false, 400, "invalid", "end_time"},
		{"task unsupported codec at start", "POST", "/v1/tasks/t-mp3/start", ``, false, 400, "invalid", "source.playlist[0]"},
		{"task missing file at start", "POST", "/v1/tasks/t-stopped/start", ``, false, 400, "invalid", "source.playlist[0]"},
		{"task Stopped: window not editable", "PUT", "/v1/tasks/t-stopped2", `{"source":{"playlist":["/srv/x.flv"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"},"end_time":"` + future(time.Hour) + `"}`, false, 409, "conflict", "window"},
		{"task Stopped: destination not editable", "PUT", "/v1/tasks/t-stopped2", `{"source":{"playlist":["/srv/x.flv"]},"destination":{"url":"rtmp://127.0.0.1:2/live/t"}}`, false, 409, "conflict", "target"},
		{"task stop when not running", "POST", "/v1/tasks/t-mp3/stop", ``, false, 409, "conflict", "state"},
		{"config task is read-only", "DELETE", "/v1/tasks/from-file", ``, false, 403, "read_only", ""},
		{"config task cannot start by API", "POST", "/v1/tasks/from-file/start", ``, false, 403, "read_only", ""},
		{"no such task", "POST", "/v1/tasks/nope/restart", ``, false, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := testToken
			if c.noToken {
				tok = ""
				if c.name == "wrong token" {
					tok = "wrong-token-wrong-token"
				}
			}
			var e apiError
			st := o.call(t, c.method, c.path, tok, c.body, &e)
			if st != c.status || e.Code != c.code || e.Field != c.field {
				t.Fatalf("got %d %q field %q (%s), want %d %q field %q", st, e.Code, e.Field, e.Message, c.status, c.code, c.field)
			}
			if e.Message == "" {
				t.Fatal("empty message")
			}
			t.Logf("%d %s: %s", st, e.Field, e.Message)
		})
	}
	// the edits the states allow still work (sent as the documents they
	// are, through the typed client)
	ctx := context.Background()
	c := o.client()
	docs := func(kind string) client.Objects[json.RawMessage, json.RawMessage] {
		d, err := c.Documents(kind)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if _, err := docs("tasks").Update(ctx, "t-stopped2", json.RawMessage(`{"source":{"playlist":["/srv/y.flv"]},"destination":{"url":"rtmp://127.0.0.1:1/live/t"},"callback":"http://127.0.0.1:1/hook"}`)); err != nil {
		t.Fatalf("Stopped task: source and callback edit refused: %v", err)
	}
	if _, err := docs("flows").Update(ctx, "running", json.RawMessage(`{"description":"renamed","source":{"type":"rtmp-push","stream":"live/in3"},`+outputs+`}`)); err != nil {
		t.Fatalf("running flow: description edit refused: %v", err)
	}
	list, err := c.Tasks().List(ctx, nil)
	if err != nil {
		t.Fatalf("list tasks: %v", err)
	}
	found := false
	for _, tk := range list {
		if tk.ID == "from-file" {
			found = true
			if !tk.ReadOnly || tk.Origin != "config" || tk.State != "Stopped" {
				t.Errorf("config task shown as %+v, want read_only, origin config, Stopped (it has no start_time)", tk)
			}
		}
	}
	if !found {
		t.Errorf("the config task from-file is not listed")
	}
}

func taskSpecJSON(t *testing.T, s string) (spec taskSpec) {
	if err := json.Unmarshal([]byte(s), &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

var fileMu sync.Mutex

// makeFile makes a 2 s 320x240 25 fps test file with ffmpeg.
func makeFile(t testing.TB, out, vcodec, acodec string, extra ...string) {
	t.Helper()
	fileMu.Lock()
	defer fileMu.Unlock()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2", // tasks take 16 to 44.1 kHz
		"-c:v", vcodec, "-g", "25", "-pix_fmt", "yuv420p", "-c:a", acodec}
	if vcodec == "libx264" {
		args = append(args, "-preset", "ultrafast")
	}
	args = append(append(args, extra...), out)
	if b, err := execCommand("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
}
