package agent

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestTaskConsoleStates: the pulled-stream relay console's state rules
// through the API. A task with a start time is NotStarted and starts by
// itself (the start action is refused); one without is Stopped and starts
// on the action; Failed and Finished tasks do not start or restart.
func TestTaskConsoleStates(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	dir := t.TempDir()
	flv := filepath.Join(dir, "a.flv")
	makeFile(t, flv, "libx264", "aac")
	o := startObjAgent(t, nil)
	dest := "rtmp://" + o.a.listenAddr("rtmp") + "/live/"
	create := func(id string, extra map[string]any) {
		t.Helper()
		body := map[string]any{"id": id, "callback": "http://127.0.0.1:1/hook",
			"source": map[string]any{"playlist": []string{flv}}, "destination": map[string]any{"url": dest + id}}
		for k, v := range extra {
			body[k] = v
		}
		var v map[string]any
		if st := o.call(t, "POST", "/v1/tasks", testToken, body, &v); st != 201 {
			t.Fatalf("create %s: %d %v", id, st, v)
		}
	}
	state := func(id string) string {
		var v map[string]any
		o.call(t, "GET", "/v1/tasks/"+id, "", nil, &v)
		s, _ := v["state"].(string)
		return s
	}
	create("later", map[string]any{"start_time": future(time.Hour)})
	create("soon", map[string]any{"loop": -1, "start_time": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	create("fails", map[string]any{"start_time": time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano),
		"source": map[string]any{"playlist": []string{filepath.Join(dir, "missing.flv")}}})
	create("once", nil)
	if s := state("later"); s != "NotStarted" {
		t.Fatalf("task with a start time is %s, want NotStarted", s)
	}
	if s := state("once"); s != "Stopped" {
		t.Fatalf("task without a start time is %s, want Stopped", s)
	}
	testmedia.Eventually(t, 10*time.Second, "soon Running by itself at its start time", func() bool { return state("soon") == "Running" })
	testmedia.Eventually(t, 10*time.Second, "fails Failed at its start time", func() bool { return state("fails") == "Failed" })
	var v map[string]any
	if st := o.call(t, "POST", "/v1/tasks/once/start", testToken, nil, &v); st != 200 || v["state"] != "Running" {
		t.Fatalf("start once: %d %v", st, v)
	}
	testmedia.Eventually(t, 10*time.Second, "once Finished (2 s file, loop 1)", func() bool { return state("once") == "Finished" })

	cases := []struct {
		name, action, id, want string
	}{
		{"start NotStarted", "start", "later", "starts by itself at its start_time"},
		{"restart NotStarted", "restart", "later", "only a Running task restarts"},
		{"stop NotStarted", "stop", "later", "not Running"},
		{"start Running", "start", "soon", "already Running"},
		{"start Failed", "start", "fails", "is Failed: only a Stopped task starts"},
		{"restart Failed", "restart", "fails", "only a Running task restarts"},
		{"start Finished", "start", "once", "is Finished: only a Stopped task starts"},
		{"restart Finished", "restart", "once", "only a Running task restarts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := state(c.id)
			var e apiError
			if st := o.call(t, "POST", "/v1/tasks/"+c.id+"/"+c.action, testToken, nil, &e); st != 409 || e.Field != "state" || !strings.Contains(e.Message, c.want) {
				t.Fatalf("%s %s: %d %+v, want 409 on state saying %q", c.action, c.id, st, e, c.want)
			}
			if after := state(c.id); after != before {
				t.Errorf("refused %s changed the state %s -> %s", c.action, before, after)
			}
		})
	}
	v = nil
	if st := o.call(t, "POST", "/v1/tasks/soon/restart", testToken, nil, &v); st != 200 || v["state"] != "Running" {
		t.Errorf("restart Running: %d %v", st, v)
	}
}

// TestTaskConsoleValidation: names and list filters, the callback rule
// (required unless the node has [webhooks] url, whose receiver then gets
// the task's events), the AAC sample-rate range, loop only on playlists,
// and playlist items named by their URL, never the cache file.
func TestTaskConsoleValidation(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name, acodec string
		extra        []string
	}{
		{"ok.mp4", "aac", nil},
		{"48k.mp4", "aac", []string{"-ar", "48000"}},
		{"8k.flv", "aac", []string{"-ar", "8000"}},
		{"mp3.mp4", "libmp3lame", nil},
	} {
		makeFile(t, filepath.Join(media, f.name), "libx264", f.acodec, f.extra...)
	}
	files := httptest.NewServer(http.FileServer(http.Dir(media)))
	defer files.Close()
	recv, hooks, secretFile := newTaskHookReceiver(t, dir)

	bare := startObjAgent(t, nil)
	withDefault := startObjAgent(t, func(c *config.Config) {
		c.Webhooks.URL, c.Webhooks.SecretFile = hooks.URL+"/node", secretFile
		c.Objects.FetchAllow = []string{"127.0.0.1/32"} // the playlist server is on loopback
	})
	dest := "rtmp://" + withDefault.a.listenAddr("rtmp") + "/live/"
	task := func(id string, edit func(b map[string]any)) map[string]any {
		b := map[string]any{"id": id, "source": map[string]any{"playlist": []string{files.URL + "/ok.mp4"}},
			"destination": map[string]any{"url": dest + id}}
		if edit != nil {
			edit(b)
		}
		return b
	}

	t.Run("callback", func(t *testing.T) {
		var e apiError
		if st := bare.call(t, "POST", "/v1/tasks", testToken, task("nocb", nil), &e); st != 400 || e.Field != "callback" || !strings.Contains(e.Message, "[webhooks] url") {
			t.Fatalf("no callback, no [webhooks] url: %d %+v, want 400 on callback", st, e)
		}
		var v map[string]any
		if st := withDefault.call(t, "POST", "/v1/tasks", testToken, task("nocb", nil), &v); st != 201 {
			t.Fatalf("no callback with [webhooks] url: %d %v", st, v)
		}
		if st := withDefault.call(t, "POST", "/v1/tasks/nocb/start", testToken, nil, &v); st != 200 {
			t.Fatalf("start: %d %v", st, v)
		}
		testmedia.Eventually(t, 10*time.Second, "task.started at the node's webhook URL", func() bool {
			return slices.Contains(recv.seen(), "task.started")
		})
		withDefault.call(t, "POST", "/v1/tasks/nocb/stop", testToken, nil, nil)
	})

	t.Run("name and filters", func(t *testing.T) {
		made := []struct{ id, name, dest string }{
			{"a", "Morning show", "rtmp://127.0.0.1:1/live/x"},
			{"b", "Evening", "rtmp://127.0.0.1:1/live/y"},
			{"c", "Morning show", "rtmp://127.0.0.1:1/live/y"},
			{"d", "", "rtmp://127.0.0.1:1/live/z"},
		}
		for _, m := range made {
			body := task("f-"+m.id, func(b map[string]any) {
				b["name"] = m.name
				b["destination"] = map[string]any{"url": m.dest}
			})
			if st := withDefault.call(t, "POST", "/v1/tasks", testToken, body, nil); st != 201 {
				t.Fatalf("create %s: %d", m.id, st)
			}
		}
		filters := []struct {
			query string
			want  []string
		}{
			{"name=" + url.QueryEscape("Morning show"), []string{"f-a", "f-c"}},
			{"destination=" + url.QueryEscape("rtmp://127.0.0.1:1/live/y"), []string{"f-b", "f-c"}},
			{"id=f-b", []string{"f-b"}},
			{"name=" + url.QueryEscape("Morning show") + "&destination=" + url.QueryEscape("rtmp://127.0.0.1:1/live/y"), []string{"f-c"}},
			{"name=f-d", []string{"f-d"}}, // no name: the id
			{"name=nobody", nil},
		}
		for _, f := range filters {
			var list struct {
				Tasks []struct{ ID, Name string }
			}
			if st := withDefault.call(t, "GET", "/v1/tasks?"+f.query, "", nil, &list); st != 200 {
				t.Fatalf("%s: %d", f.query, st)
			}
			var got []string
			for _, tk := range list.Tasks {
				if strings.HasPrefix(tk.ID, "f-") {
					got = append(got, tk.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(f.want, ",") {
				t.Errorf("GET /v1/tasks?%s: %v, want %v", f.query, got, f.want)
			}
		}
		var e apiError
		if st := withDefault.call(t, "GET", "/v1/tasks?colour=red", "", nil, &e); st != 400 || e.Field != "colour" || !strings.Contains(e.Message, "id, name, destination") {
			t.Errorf("unknown filter: %d %+v, want 400 naming the filters", st, e)
		}
	})

	refusals := []struct {
		name        string
		edit        func(b map[string]any)
		atStart     bool
		field, want string
	}{
		{"loop on a live source", func(b map[string]any) {
			b["source"] = map[string]any{"url": "rtmp://127.0.0.1:1/live/src"}
			b["loop"] = 3
		}, false, "loop", "loop counts apply to playlists"},
		{"loop forever on a live source", func(b map[string]any) {
			b["source"] = map[string]any{"url": "rtmp://127.0.0.1:1/live/src"}
			b["loop"] = -1
		}, false, "loop", "a live source (url) plays once"},
		{"48 kHz AAC", func(b map[string]any) {
			b["source"] = map[string]any{"playlist": []string{files.URL + "/ok.mp4", files.URL + "/48k.mp4"}}
		}, true, "source.playlist[1]", files.URL + "/48k.mp4: AAC sample rate out of range: 48000 Hz; tasks take 16000 to 44100 Hz"},
		{"8 kHz AAC", func(b map[string]any) {
			b["source"] = map[string]any{"playlist": []string{files.URL + "/8k.flv"}}
		}, true, "source.playlist[0]", files.URL + "/8k.flv: AAC sample rate out of range: 8000 Hz"},
		{"mp3 named by its URL", func(b map[string]any) {
			b["source"] = map[string]any{"playlist": []string{files.URL + "/mp3.mp4"}}
		}, true, "source.playlist[0]", files.URL + "/mp3.mp4: unsupported codec"},
	}
	for i, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			id := "r" + string(rune('0'+i))
			body := task(id, c.edit)
			var e apiError
			st := withDefault.call(t, "POST", "/v1/tasks", testToken, body, &e)
			if c.atStart {
				if st != 201 {
					t.Fatalf("create: %d %+v", st, e)
				}
				st = withDefault.call(t, "POST", "/v1/tasks/"+id+"/start", testToken, nil, &e)
			}
			if c.atStart && st == 200 {
				// items still to download: the start answers at once and
				// the task fails with the refusal once they are probed
				testmedia.Eventually(t, 15*time.Second, "the task Failed with the refusal", func() bool {
					var v struct{ State, Reason string }
					withDefault.call(t, "GET", "/v1/tasks/"+id, "", nil, &v)
					st, e.Field, e.Message = 400, c.field, v.Reason
					return v.State == "Failed"
				})
				if !strings.HasPrefix(e.Message, c.field+": ") {
					t.Errorf("reason %q does not name %s", e.Message, c.field)
				}
			}
			if st != 400 || e.Field != c.field || !strings.Contains(e.Message, c.want) {
				t.Fatalf("%d %+v, want 400 on %s saying %q", st, e, c.field, c.want)
			}
			if strings.Contains(e.Message, "task-cache") || strings.Contains(e.Message, dir) {
				t.Errorf("refusal %q names a local path, not the item URL", e.Message)
			}
			if c.atStart {
				var v map[string]any
				withDefault.call(t, "GET", "/v1/tasks/"+id, "", nil, &v)
				if v["state"] != "Stopped" && v["state"] != "Failed" {
					t.Errorf("refused start left the task %v, want Stopped (refused at start) or Failed (refused once downloaded)", v["state"])
				}
			}
		})
	}
}
