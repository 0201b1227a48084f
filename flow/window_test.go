package flow

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time)  { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func at(t time.Time) *time.Time       { return &t }
func kindOf(err error) lifecycle.Kind { return lifecycle.AsProblem(err).Kind }
func fieldOf(err error) string        { return lifecycle.AsProblem(err).Field }
func isProblem(err error, k lifecycle.Kind, field string) bool {
	var p *lifecycle.Problem
	return errors.As(err, &p) && p.Kind == k && p.Field == field
}

// TestFlowWindow walks a flow with a time window through scheduled,
// running and finished on a fake clock, with the edit rules of each state.
func TestFlowWindow(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	defer hub.Close()
	t0 := time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	m := NewManager(hub, log, lifecycle.Env{Clock: clk.now})
	defer m.Close()
	spec := Spec{ID: "w", Source: Source{Type: SrcRTMPPush, Stream: "live/w"},
		Outputs: []Output{{Name: "p", Type: OutRTMPPull}},
		Start:   at(t0.Add(10 * time.Minute)), End: at(t0.Add(20 * time.Minute))}
	state := func() lifecycle.State { v, _ := m.Get("w"); return v.State }

	steps := []struct {
		name string
		do   func() error
		kind lifecycle.Kind // "" = accepted
		fld  string
		want lifecycle.State
	}{
		{"create with a window: scheduled", func() error { return m.Create(spec, lifecycle.CreateOpts{}) }, "", "", lifecycle.Scheduled},
		{"an end in the past is refused", func() error { s := spec; s.End = at(t0.Add(-time.Minute)); return m.Update(s) }, lifecycle.Invalid, "end_time", lifecycle.Scheduled},
		{"an end before the start is refused", func() error { s := spec; s.End = at(t0.Add(5 * time.Minute)); return m.Update(s) }, lifecycle.Invalid, "end_time", lifecycle.Scheduled},
		{"the window is editable while scheduled", func() error { s := spec; s.End = at(t0.Add(30 * time.Minute)); spec = s; return m.Update(s) }, "", "", lifecycle.Scheduled},
		{"start time: running", func() error { clk.set(t0.Add(10 * time.Minute)); m.tick(); return nil }, "", "", ""},
		{"the window is not editable while running", func() error { s := spec; s.End = at(t0.Add(40 * time.Minute)); return m.Update(s) }, lifecycle.Conflict, "window", ""},
		{"end time: finished", func() error { clk.set(t0.Add(30 * time.Minute)); m.tick(); return nil }, "", "", lifecycle.Finished},
		{"a finished flow does not start", func() error { return m.Start(context.Background(), "w") }, lifecycle.Conflict, "end_time", lifecycle.Finished},
		{"a new window schedules it again", func() error {
			s := spec
			s.Start, s.End = at(t0.Add(time.Hour)), at(t0.Add(2*time.Hour))
			return m.Update(s)
		}, "", "", lifecycle.Scheduled},
		{"no window: standby", func() error { s := spec; s.Start, s.End = nil, nil; return m.Update(s) }, "", "", lifecycle.Standby},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := s.do()
			if s.kind == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if s.kind != "" && !isProblem(err, s.kind, s.fld) {
				t.Fatalf("got %v (%s on %q), want a %s on %q", err, kindOf(err), fieldOf(err), s.kind, s.fld)
			}
			if s.want != "" && state() != s.want {
				t.Fatalf("state %s, want %s", state(), s.want)
			}
			if s.name == "start time: running" {
				testmedia.Eventually(t, 5*time.Second, "running", func() bool { return state() == lifecycle.Running })
			}
		})
	}

	t.Run("created past its end", func(t *testing.T) {
		late := Spec{ID: "late", Source: Source{Type: SrcRTMPPush, Stream: "live/late"}, Outputs: spec.Outputs,
			Start: at(t0), End: at(t0.Add(time.Minute))}
		if err := m.Create(late, lifecycle.CreateOpts{}); !isProblem(err, lifecycle.Invalid, "end_time") {
			t.Fatalf("API create past its end: %v, want invalid end_time", err)
		}
		if err := m.Create(late, lifecycle.CreateOpts{From: lifecycle.FromConfig, State: lifecycle.Running}); err != nil { // a config file or a restart
			t.Fatal(err)
		}
		if v, _ := m.Get("late"); v.State != lifecycle.Finished {
			t.Fatalf("state %s, want finished", v.State)
		}
	})
}
