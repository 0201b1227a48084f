package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/task"
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
	ctx := context.Background()
	tasks := o.client().Tasks()
	create := func(id string, edit func(s *task.Spec)) {
		t.Helper()
		spec := task.Spec{ID: id, Callback: "http://127.0.0.1:1/hook",
			Source: task.Source{Playlist: []string{flv}}, Destination: task.Destination{URL: dest + id}}
		if edit != nil {
			edit(&spec)
		}
		if _, err := tasks.Create(ctx, spec); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	state := func(id string) string {
		v, err := tasks.Get(ctx, id)
		if err != nil {
			t.Fatalf("GET task %s: %v", id, err)
		}
		return v.State
	}
	at := func(d time.Duration) *time.Time { at := time.Now().Add(d).UTC(); return &at }
	create("later", func(s *task.Spec) { s.Start = at(time.Hour) })
	create("soon", func(s *task.Spec) { s.Loop, s.Start = -1, at(1500*time.Millisecond) })
	create("fails", func(s *task.Spec) {
		s.Start, s.Source = at(time.Second), task.Source{Playlist: []string{filepath.Join(dir, "missing.flv")}}
	})
	create("once", nil)
	if s := state("later"); s != "NotStarted" {
		t.Fatalf("task with a start time is %s, want NotStarted", s)
	}
	if s := state("once"); s != "Stopped" {
		t.Fatalf("task without a start time is %s, want Stopped", s)
	}
	testmedia.Eventually(t, 10*time.Second, "soon Running by itself at its start time", func() bool { return state("soon") == "Running" })
	testmedia.Eventually(t, 10*time.Second, "fails Failed at its start time", func() bool { return state("fails") == "Failed" })
	if v, err := tasks.Do(ctx, "once", "start"); err != nil || v.State != "Running" {
		t.Fatalf("start once: %+v, %v; want Running", v, err)
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
			_, err := tasks.Do(ctx, c.id, c.action)
			if e := client.ProblemOf(err); e == nil || e.Status != 409 || e.Field != "state" || !strings.Contains(e.Message, c.want) {
				t.Fatalf("%s %s: %v, want 409 on state saying %q", c.action, c.id, err, c.want)
			}
			if after := state(c.id); after != before {
				t.Errorf("refused %s changed the state %s -> %s", c.action, before, after)
			}
		})
	}
	if v, err := tasks.Do(ctx, "soon", "restart"); err != nil || v.State != "Running" {
		t.Errorf("restart Running: %+v, %v; want Running", v, err)
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
	ctx := context.Background()
	tasks := withDefault.client().Tasks()
	mk := func(id string, edit func(s *task.Spec)) task.Spec {
		s := task.Spec{ID: id, Source: task.Source{Playlist: []string{files.URL + "/ok.mp4"}},
			Destination: task.Destination{URL: dest + id}}
		if edit != nil {
			edit(&s)
		}
		return s
	}

	t.Run("callback", func(t *testing.T) {
		_, err := bare.client().Tasks().Create(ctx, mk("nocb", nil))
		if e := client.ProblemOf(err); e == nil || e.Status != 400 || e.Field != "callback" || !strings.Contains(e.Message, "[webhooks] url") {
			t.Fatalf("no callback, no [webhooks] url: %v, want 400 on callback", err)
		}
		if _, err := tasks.Create(ctx, mk("nocb", nil)); err != nil {
			t.Fatalf("no callback with [webhooks] url: %v", err)
		}
		if _, err := tasks.Do(ctx, "nocb", "start"); err != nil {
			t.Fatalf("start: %v", err)
		}
		testmedia.Eventually(t, 10*time.Second, "task.started at the node's webhook URL", func() bool {
			return slices.Contains(recv.seen(), "task.started")
		})
		tasks.Do(ctx, "nocb", "stop")
	})

	t.Run("name and filters", func(t *testing.T) {
		made := []struct{ id, name, dest string }{
			{"a", "Morning show", "rtmp://127.0.0.1:1/live/x"},
			{"b", "Evening", "rtmp://127.0.0.1:1/live/y"},
			{"c", "Morning show", "rtmp://127.0.0.1:1/live/y"},
			{"d", "", "rtmp://127.0.0.1:1/live/z"},
		}
		for _, m := range made {
			spec := mk("f-"+m.id, func(s *task.Spec) {
				s.Name = m.name
				s.Destination = task.Destination{URL: m.dest}
			})
			if _, err := tasks.Create(ctx, spec); err != nil {
				t.Fatalf("create %s: %v", m.id, err)
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
			q, err := url.ParseQuery(f.query)
			if err != nil {
				t.Fatal(err)
			}
			list, err := tasks.List(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", f.query, err)
			}
			var got []string
			for _, tk := range list {
				if strings.HasPrefix(tk.ID, "f-") {
					got = append(got, tk.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(f.want, ",") {
				t.Errorf("GET /v1/tasks?%s: %v, want %v", f.query, got, f.want)
			}
		}
		_, err := tasks.List(ctx, url.Values{"colour": {"red"}})
		if e := client.ProblemOf(err); e == nil || e.Status != 400 || e.Field != "colour" || !strings.Contains(e.Message, "id, name, destination") {
			t.Errorf("unknown filter: %v, want 400 naming the filters", err)
		}
	})

	refusals := []struct {
		name        string
		edit        func(s *task.Spec)
		atStart     bool
		field, want string
	}{
		{"loop on a live source", func(s *task.Spec) {
			s.Source = task.Source{URL: "rtmp://127.0.0.1:1/live/src"}
			s.Loop = 3
		}, false, "loop", "loop counts apply to playlists"},
		{"loop forever on a live source", func(s *task.Spec) {
			s.Source = task.Source{URL: "rtmp://127.0.0.1:1/live/src"}
			s.Loop = -1
		}, false, "loop", "a live source (url) plays once"},
		{"48 kHz AAC", func(s *task.Spec) {
			s.Source = task.Source{Playlist: []string{files.URL + "/ok.mp4", files.URL + "/48k.mp4"}}
		}, true, "source.playlist[1]", files.URL + "/48k.mp4: AAC sample rate out of range: 48000 Hz; tasks take 16000 to 44100 Hz"},
		{"8 kHz AAC", func(s *task.Spec) {
			s.Source = task.Source{Playlist: []string{files.URL + "/8k.flv"}}
		}, true, "source.playlist[0]", files.URL + "/8k.flv: AAC sample rate out of range: 8000 Hz"},
		{"mp3 named by its URL", func(s *task.Spec) {
			s.Source = task.Source{Playlist: []string{files.URL + "/mp3.mp4"}}
		}, true, "source.playlist[0]", files.URL + "/mp3.mp4: unsupported codec"},
	}
	for i, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			id := "r" + string(rune('0'+i))
			_, err := tasks.Create(ctx, mk(id, c.edit))
			if c.atStart {
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				_, err = tasks.Do(ctx, id, "start")
			}
			st, e := 200, client.Problem{}
			if p := client.ProblemOf(err); p != nil {
				st, e = p.Status, *p
			} else if err != nil {
				t.Fatal(err)
			}
			if c.atStart && st == 200 {
				// items still to download: the start answers at once and
				// the task fails with the refusal once they are probed
				testmedia.Eventually(t, 15*time.Second, "the task Failed with the refusal", func() bool {
					v, err := tasks.Get(ctx, id)
					if err != nil {
						t.Fatalf("GET task %s: %v", id, err)
					}
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
				v, err := tasks.Get(ctx, id)
				if err != nil {
					t.Fatalf("GET task %s: %v", id, err)
				}
				if v.State != "Stopped" && v.State != "Failed" {
					t.Errorf("refused start left the task %v, want Stopped (refused at start) or Failed (refused once downloaded)", v.State)
				}
			}
		})
	}
}
