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
// Running; every refusal is a Conflict on state and changes nothing.
func TestActionsByState(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	defer hub.Close()
	m := NewManager(&Deps{Hub: hub, Log: log}, func() int { return 0 })
	m.DefaultCallback = func() string { return "http://127.0.0.1:1/hook" }
	defer m.Close()
	later := time.Now().Add(time.Hour)
	states := []struct {
		state lifecycle.State
		start *time.Time
	}{
		{lifecycle.Scheduled, &later}, {lifecycle.Standby, nil}, {lifecycle.Running, nil},
		{lifecycle.Error, nil}, {lifecycle.Finished, nil},
	}
	allowed := map[string][]lifecycle.State{
		"start":   {lifecycle.Standby},
		"restart": {lifecycle.Running},
		"stop":    {lifecycle.Running},
	}
	for action, ok := range allowed {
		for _, s := range states {
			if action != "start" && s.state == lifecycle.Running {
				continue // a Running task needs a player: agent's TestTaskStopRestartDelete restarts and stops one
			}
			t.Run(action+" from "+s.state.TaskName(), func(t *testing.T) {
				spec := Spec{ID: "t", Source: Source{Playlist: []string{"/nonexistent/a.mp4"}},
					Destination: Destination{URL: "rtmp://127.0.0.1:1/live/t"}, Start: s.start}
				if err := m.Create(spec, false, ""); err != nil {
					t.Fatal(err)
				}
				defer func() {
					m.mu.Lock()
					m.tasks["t"].state = lifecycle.Standby
					m.mu.Unlock()
					m.Delete("t")
				}()
				m.mu.Lock()
				m.tasks["t"].state = s.state
				m.mu.Unlock()
				var err error
				switch action {
				case "start":
					err = m.Start(context.Background(), "t")
				case "restart":
					err = m.Restart(context.Background(), "t")
				case "stop":
					err = m.Stop("t", false)
				}
				p := lifecycle.AsProblem(err)
				refusedByState := err != nil && p.Kind == lifecycle.Conflict && p.Field == "state"
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
