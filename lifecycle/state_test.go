package lifecycle

import (
	"errors"
	"testing"
	"time"
)

func TestTaskRules(t *testing.T) {
	cases := []struct {
		name  string
		state State
		parts []Part
		ok    bool
	}{
		{"NotStarted: time", Scheduled, []Part{PartWindow}, true},
		{"NotStarted: callback and source", Scheduled, []Part{PartCallback, PartSource}, true},
		{"NotStarted: destination", Scheduled, []Part{PartTarget}, false},
		{"Stopped: callback and source", Standby, []Part{PartCallback, PartSource}, true},
		{"Stopped: time", Standby, []Part{PartWindow}, false},
		{"NotStarted: name", Scheduled, []Part{PartName}, true},
		{"Stopped: name", Standby, []Part{PartName}, true},
		{"Running: name", Running, []Part{PartName}, false},
		{"Running: callback", Running, []Part{PartCallback}, false},
		{"Failed: source", Error, []Part{PartSource}, false},
		{"Finished: callback", Finished, []Part{PartCallback}, false},
		{"nothing changed", Running, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := TaskRules.Check(c.state, c.state.TaskName(), c.parts...)
			if (err == nil) != c.ok {
				t.Fatalf("got %v, want ok=%v", err, c.ok)
			}
			var p *Problem
			if err != nil && (!errors.As(err, &p) || p.Kind != Conflict || p.Field == "") {
				t.Fatalf("refusal %#v is not a Conflict naming the part", err)
			}
		})
	}
}

func TestFlowRulesAndTransitions(t *testing.T) {
	if FlowRules.Check(Running, "running", PartOutputs) == nil {
		t.Error("outputs editable while running")
	}
	if FlowRules.Check(Standby, "standby", PartOutputs, PartSource) != nil {
		t.Error("standby flow not editable")
	}
	for _, c := range []struct {
		from, to State
		ok       bool
	}{
		{Standby, Starting, true}, {Starting, Running, true}, {Running, Stopping, true}, {Stopping, Standby, true},
		{Running, Error, true}, {Error, Starting, true}, {Scheduled, Starting, true}, {Stopping, Finished, true},
		{Standby, Running, false}, {Running, Standby, false}, {Finished, Running, false},
	} {
		if got := c.from.Can(c.to); got != c.ok {
			t.Errorf("%s -> %s: %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	for _, s := range []State{Scheduled, Starting, Running, Stopping, Standby, Error, Finished} {
		if back, ok := StateFromTaskName(s.TaskName()); !ok || back.TaskName() != s.TaskName() {
			t.Errorf("%s: task name %s does not map back", s, s.TaskName())
		}
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	cases := []struct {
		name       string
		start, end *time.Time
		ok         bool
		rest       State
	}{
		{"no window", nil, nil, true, Standby},
		{"start only", at(time.Hour), nil, true, Scheduled},
		{"end only", nil, at(time.Hour), true, Standby},
		{"start and end", at(time.Hour), at(2 * time.Hour), true, Scheduled},
		{"end before start", at(2 * time.Hour), at(time.Hour), false, Scheduled},
		{"end passed", at(-2 * time.Hour), at(-time.Hour), false, Finished},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := CheckWindow(c.start, c.end, t0); (err == nil) != c.ok {
				t.Errorf("CheckWindow: %v, want ok=%v", err, c.ok)
			}
			if got := Resting(c.start, c.end, t0); got != c.rest {
				t.Errorf("Resting: %s, want %s", got, c.rest)
			}
		})
	}
}
