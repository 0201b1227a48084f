package lifecycle

import (
	"errors"
	"slices"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func isKind(err error, k Kind) bool {
	var p *Problem
	return errors.As(err, &p) && p.Kind == k
}

// TestRegistryTransitions: every change goes through the transitions
// table; a refused move changes nothing; Since follows the injected clock.
func TestRegistryTransitions(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)}
	r := NewRegistry[int](Options{Kind: "thing", Plural: "things"}, Env{Clock: clk.now})
	if _, err := r.Add("a", CreateOpts{}, Standby, 0, nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		to State
		ok bool
	}{
		{Running, false}, {Starting, true}, {Standby, false}, {Running, true}, {Scheduled, false},
		{Stopping, true}, {Standby, true}, {Error, true}, {Starting, true}, {Error, true}, {Finished, true},
	}
	for i, s := range steps {
		clk.t = clk.t.Add(time.Minute)
		var before State
		err := r.Do("a", func(e *Entry[int]) error { before = e.State(); return e.Move(s.to, "why") })
		if (err == nil) != s.ok {
			t.Fatalf("step %d: %s -> %s: %v, want ok=%v", i, before, s.to, err, s.ok)
		}
		if err != nil && !isKind(err, Conflict) {
			t.Fatalf("step %d: refusal %v is not a Conflict", i, err)
		}
		var st State
		var since time.Time
		r.Do("a", func(e *Entry[int]) error { st, since = e.State(), e.Since(); return nil })
		want := before
		if s.ok {
			want = s.to
		}
		if st != want || (s.ok && !since.Equal(clk.t)) {
			t.Fatalf("step %d: state %s since %s, want %s since %s", i, st, since, want, clk.t)
		}
	}
	if _, err := r.Add("b", CreateOpts{}, State("bogus"), 0, nil); !isKind(err, Invalid) {
		t.Errorf("Add in an unknown state: %v, want Invalid", err)
	}
}

// TestRegistryLimits: a LimitObjects limit refuses new objects from the
// API (not config or stored ones); a LimitActive limit refuses a start
// beyond it; both read the limit at each check.
func TestRegistryLimits(t *testing.T) {
	max := 2
	env := Env{Limit: func() int { return max }}
	objs := NewRegistry[int](Options{Kind: "relay", Plural: "relays", LimitOf: LimitObjects, LimitKey: "objects.max_relays"}, env)
	for _, id := range []string{"a", "b"} {
		if _, err := objs.Add(id, CreateOpts{}, Standby, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := objs.Add("a", CreateOpts{From: FromStore}, Standby, 0, nil); !isKind(err, Exists) {
		t.Errorf("a taken id: %v, want Exists", err)
	}
	_, err := objs.Add("c", CreateOpts{}, Standby, 0, nil)
	if !isKind(err, Limit) || err.Error() != "2 relays exist, the most this node keeps (objects.max_relays)" {
		t.Errorf("a third from the API: %v, want the limit", err)
	}
	if _, err := objs.Add("c", CreateOpts{From: FromStore}, Standby, 0, nil); err != nil {
		t.Errorf("a stored one over the limit: %v, want kept", err)
	}
	if _, err := objs.Add("d", CreateOpts{From: FromConfig}, Standby, 0, nil); err != nil {
		t.Errorf("a config one over the limit: %v, want kept", err)
	}
	max = 5
	if _, err := objs.Add("e", CreateOpts{}, Standby, 0, nil); err != nil {
		t.Errorf("after raising the limit: %v", err)
	}
	if got := objs.IDs(true); !slices.Equal(got, []string{"d"}) {
		t.Errorf("read-only ids %v, want [d]", got)
	}

	max = 1
	active := NewRegistry[int](Options{Kind: "task", Plural: "tasks", LimitOf: LimitActive, LimitKey: "objects.max_running_tasks",
		StateName: State.TaskName}, env)
	for _, id := range []string{"a", "b"} {
		active.Add(id, CreateOpts{}, Standby, 0, nil)
	}
	start := func(id string) error { return active.Do(id, func(e *Entry[int]) error { return e.Move(Starting, "") }) }
	if err := start("a"); err != nil {
		t.Fatal(err)
	}
	err = start("b")
	if !isKind(err, Limit) || err.Error() != "1 tasks are running, the most this node runs (objects.max_running_tasks)" {
		t.Errorf("a second start: %v, want the limit", err)
	}
	if _, err := active.Delete("a", nil); !isKind(err, Conflict) || err.Error() != `state: task "a" is Running: stop it before deleting it` {
		t.Errorf("delete of a running task: %v", err)
	}
	if err := active.Do("a", func(e *Entry[int]) error { return e.Move(Running, "") }); err != nil {
		t.Fatal(err)
	}
	if err := start("b"); !isKind(err, Limit) {
		t.Errorf("a start while one runs: %v, want the limit", err)
	}
	active.Do("a", func(e *Entry[int]) error { e.Move(Stopping, ""); return e.Move(Standby, "") })
	if err := start("b"); err != nil {
		t.Errorf("a start once the other stopped: %v", err)
	}
	if err := active.Do("z", func(*Entry[int]) error { return nil }); !isKind(err, NotFound) {
		t.Errorf("unknown id: %v, want NotFound", err)
	}
}

// TestRegistryStore: each change is persisted once, after the lock is
// released (the store reads the registry back without a deadlock).
func TestRegistryStore(t *testing.T) {
	var r *Registry[string]
	var saved []string
	store := StoreFunc(func(kind, id string) {
		n := len(List(r, func(e *Entry[string]) string { return e.ID })) // takes the lock
		saved = append(saved, kind+"/"+id+"/"+string(rune('0'+n)))
	})
	r = NewRegistry[string](Options{Kind: "flow", Plural: "flows"}, Env{Store: store})
	r.Add("a", CreateOpts{}, Standby, "x", nil)
	r.Do("a", func(e *Entry[string]) error { return nil }) // no change: no save
	r.Do("a", func(e *Entry[string]) error {
		e.Move(Starting, "")
		e.Move(Running, "") // two moves, one save
		return nil
	})
	r.Do("a", func(e *Entry[string]) error { e.Obj = "y"; e.Changed(); return nil })
	r.Remove("a")
	want := []string{"flow/a/1", "flow/a/1", "flow/a/1", "flow/a/0"}
	if !slices.Equal(saved, want) {
		t.Errorf("saves %v, want %v", saved, want)
	}
	if v, ok := Get(r, "a", func(e *Entry[string]) string { return e.Obj }); ok {
		t.Errorf("removed object still there: %q", v)
	}
}
