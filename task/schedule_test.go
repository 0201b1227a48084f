package task

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
)

// hooks records the webhook events the manager sends, by task.
type hooks struct {
	mu     sync.Mutex
	events map[string][]string // task -> "event state reason"
}

func (h *hooks) Notify(_ string, payload any) {
	ev := payload.(Event)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events[ev.Task] = append(h.events[ev.Task], strings.TrimSpace(ev.Event+" "+ev.State+" "+ev.Reason))
}

func (h *hooks) of(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.events[id], "; ")
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time                { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)               { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) at(d time.Duration) *time.Time { t := c.now().Add(d); return &t }

func newTestManager(t *testing.T, env lifecycle.Env) (*Manager, *hooks) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	t.Cleanup(func() { hub.Close() })
	m := NewManager(&Deps{Hub: hub, Log: log}, env)
	h := &hooks{events: map[string][]string{}}
	m.NotifierFor = func(string) Notifier { return h }
	t.Cleanup(func() { m.Close() })
	return m, h
}

// live is a task source that runs until stopped: a pull that keeps
// retrying a closed port.
func liveSpec(id string) Spec {
	return Spec{ID: id, Source: Source{URL: "rtmp://127.0.0.1:1/live/" + id}, Destination: Destination{URL: "rtmp://127.0.0.1:1/live/out-" + id},
		Callback: "http://127.0.0.1:1/hook", Loop: 1}
}

// TestTaskSchedule: on a fake clock, the scheduler starts a NotStarted
// task at its start time and finishes it at its end time, and finishes a
// task whose window ended before it started; each change sends its
// webhook event with the console state.
func TestTaskSchedule(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	m, h := newTestManager(t, lifecycle.Env{Clock: clk.now})
	a := liveSpec("a")
	a.Start, a.End = clk.at(10*time.Minute), clk.at(20*time.Minute)
	late := liveSpec("late")
	late.Start, late.End = clk.at(5*time.Minute), clk.at(6*time.Minute)
	for _, s := range []Spec{a, late} {
		if err := m.Create(s, lifecycle.CreateOpts{}); err != nil {
			t.Fatalf("create %s: %v", s.ID, err)
		}
	}
	state := func(id string) string { v, _ := m.Get(id); return v.State }
	ctx := context.Background()
	steps := []struct {
		at      time.Duration
		a, late string // console states after the tick
	}{
		{time.Minute, "NotStarted", "NotStarted"},
		{7 * time.Minute, "NotStarted", "Finished"},
		{10 * time.Minute, "Running", "Finished"},
		{20 * time.Minute, "Finished", "Finished"},
	}
	for _, s := range steps {
		clk.set(t0.Add(s.at))
		m.tick(ctx)
		// a start runs in its own goroutine: wait for it, never sleep
		poll.Until(t, 10*time.Second, "task a "+s.a+" at +"+s.at.String(), func() bool { return state("a") == s.a })
		if got := state("late"); got != s.late {
			t.Errorf("+%s: late is %s, want %s", s.at, got, s.late)
		}
	}
	if got, want := h.of("a"), "started Running; finished Finished"; got != want {
		t.Errorf("a's events %q, want %q", got, want)
	}
	if got, want := h.of("late"), "finished Finished the time window ended before the task started"; got != want {
		t.Errorf("late's events %q, want %q", got, want)
	}
	if v, _ := m.Get("a"); !v.Since.Equal(t0.Add(20 * time.Minute)) {
		t.Errorf("a finished since %s, want the fake clock's %s", v.Since, t0.Add(20*time.Minute))
	}
}

// TestTaskRunningLimit: objects.max_running_tasks (the env's limit,
// read at every start) refuses a start beyond it with a Limit problem
// that names the setting, and admits it once another task stopped.
func TestTaskRunningLimit(t *testing.T) {
	max := 1
	m, _ := newTestManager(t, lifecycle.Env{Limit: func() int { return max }})
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := m.Create(liveSpec(id), lifecycle.CreateOpts{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	err := m.Start(ctx, "b")
	if p := lifecycle.AsProblem(err); err == nil || p.Kind != lifecycle.Limit || !strings.Contains(p.Msg, "objects.max_running_tasks") {
		t.Fatalf("second start: %v, want the limit naming objects.max_running_tasks", err)
	}
	if v, _ := m.Get("b"); v.State != "Stopped" {
		t.Errorf("the refused task is %s, want still Stopped", v.State)
	}
	if err := m.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "b"); err != nil {
		t.Errorf("start after the other stopped: %v", err)
	}
	max = 0 // no limit
	if err := m.Start(ctx, "a"); err != nil {
		t.Errorf("start without a limit: %v", err)
	}
}
