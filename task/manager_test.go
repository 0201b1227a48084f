package task

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
)

// TestActionsByState: start only from Stopped, restart and stop only from
// Running; every refusal is a Conflict on state and changes nothing. Each
// state is reached as a user reaches it (create, fail, a stored finished
// task, a running live pull), not set by hand.
func TestActionsByState(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	defer hub.Close()
	m := NewManager(&Deps{Hub: hub, Log: log}, lifecycle.Env{})
	m.DefaultCallback = func() string { return "http://127.0.0.1:1/hook" }
	defer m.Close()
	later := time.Now().Add(time.Hour)
	file := Source{Playlist: []string{"/nonexistent/a.mp4"}}
	live := Source{URL: "rtmp://127.0.0.1:1/live/src"} // the pull retries; the task stays Running
	dest := Destination{URL: "rtmp://127.0.0.1:1/live/t"}
	states := []struct {
		state lifecycle.State
		make  func() error
	}{
		{lifecycle.Scheduled, func() error {
			return m.Create(Spec{ID: "t", Source: file, Destination: dest, Start: &later}, lifecycle.CreateOpts{})
		}},
		{lifecycle.Standby, func() error { return m.Create(Spec{ID: "t", Source: file, Destination: dest}, lifecycle.CreateOpts{}) }},
		{lifecycle.Running, func() error {
			if err := m.Create(Spec{ID: "t", Source: live, Destination: dest}, lifecycle.CreateOpts{}); err != nil {
				return err
			}
			return m.Start(context.Background(), "t")
		}},
		{lifecycle.Error, func() error {
			err := m.Create(Spec{ID: "t", Source: file, Destination: dest}, lifecycle.CreateOpts{})
			m.Fail("t", "test")
			return err
		}},
		{lifecycle.Finished, func() error {
			return m.Create(Spec{ID: "t", Source: file, Destination: dest}, lifecycle.CreateOpts{From: lifecycle.FromStore, State: lifecycle.Finished})
		}},
	}
	allowed := map[string][]lifecycle.State{
		"start":   {lifecycle.Standby},
		"restart": {lifecycle.Running},
		"stop":    {lifecycle.Running},
	}
	for action, ok := range allowed {
		for _, s := range states {
			t.Run(action+" from "+s.state.TaskName(), func(t *testing.T) {
				if err := s.make(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					m.Stop(context.Background(), "t")
					if err := m.Delete("t"); err != nil {
						t.Errorf("delete: %v", err)
					}
				}()
				if v, _ := m.Get("t"); v.Internal != s.state {
					t.Fatalf("made %s, got %s (%s)", s.state, v.Internal, v.Reason)
				}
				var err error
				switch action {
				case "start":
					err = m.Start(context.Background(), "t")
				case "restart":
					err = m.Restart(context.Background(), "t")
				case "stop":
					err = m.Stop(context.Background(), "t")
				}
				refusedByState := false
				if err != nil {
					p := lifecycle.AsProblem(err)
					refusedByState = p.Kind == lifecycle.Conflict && p.Field == "state"
				}
				want := true
				for _, a := range ok {
					if a == s.state {
						want = false
					}
				}
				if refusedByState != want {
					t.Fatalf("%s from %s: %v, want refused by state = %v", action, s.state.TaskName(), err, want)
				}
				if v, _ := m.Get("t"); refusedByState && v.Internal != s.state {
					t.Errorf("a refused %s changed the state to %s", action, v.State)
				}
			})
		}
	}
}
