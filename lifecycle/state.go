// Package lifecycle is the object kernel shared by flows, relays and
// pseudo-live tasks: the state machine and its transitions, the edit
// rules, the registry that holds the objects (transitions checked on
// every change, limits, persistence, clock), and the error type that
// names the field and the rule an API call broke.
package lifecycle

import (
	"fmt"
	"slices"
)

// State is where an object is in its life.
type State string

// States (DESIGN.md "The object model"): standby -> starting -> running ->
// stopping -> standby, plus error with a reason, and scheduled / finished
// for objects with a time window.
const (
	Standby   State = "standby"
	Starting  State = "starting"
	Running   State = "running"
	Stopping  State = "stopping"
	Error     State = "error"
	Scheduled State = "scheduled"
	Finished  State = "finished"
)

// transitions lists the states each state may move to; Registry checks
// every change against it. A resting object goes to error when its start
// is refused before it begins (a scheduled start, a restart), and to
// finished when its window ends; a running one finishes by itself when
// its work is done (a playlist played to the end).
var transitions = map[State][]State{
	Standby:   {Starting, Scheduled, Finished, Error},
	Scheduled: {Starting, Standby, Finished, Error},
	Starting:  {Running, Stopping, Error},
	Running:   {Stopping, Error, Finished},
	Stopping:  {Standby, Finished, Error, Scheduled},
	Error:     {Starting, Standby, Scheduled, Finished},
	Finished:  {Starting, Standby, Scheduled},
}

// Can reports whether s may move to next.
func (s State) Can(next State) bool { return s == next || slices.Contains(transitions[s], next) }

// Active reports whether the object runs (or is on its way up or down).
func (s State) Active() bool { return s == Starting || s == Running || s == Stopping }

// Valid reports whether s is a known state.
func (s State) Valid() bool { _, ok := transitions[s]; return ok }

// TaskName is the name pulled-stream relay consoles use for a task state:
// NotStarted (= scheduled), Running, Stopped (= standby), Failed (= error)
// and Finished.
func (s State) TaskName() string {
	switch s {
	case Scheduled:
		return "NotStarted"
	case Starting, Running, Stopping:
		return "Running"
	case Error:
		return "Failed"
	case Finished:
		return "Finished"
	}
	return "Stopped"
}

// StateFromTaskName is the inverse of TaskName (Running -> running).
func StateFromTaskName(n string) (State, bool) {
	switch n {
	case "NotStarted":
		return Scheduled, true
	case "Running":
		return Running, true
	case "Stopped":
		return Standby, true
	case "Failed":
		return Error, true
	case "Finished":
		return Finished, true
	}
	return "", false
}

// Part is a group of fields edited together.
type Part string

// Editable parts of objects.
const (
	PartName     Part = "name"     // description and other labels
	PartSource   Part = "source"   // flow source(s), task source
	PartOutputs  Part = "outputs"  // flow outputs
	PartWindow   Part = "window"   // start and end time
	PartCallback Part = "callback" // task webhook URL
	PartTarget   Part = "target"   // relay pattern and destination, task destination
	PartLoop     Part = "loop"     // task loop count
)

// Rules says which parts may change in which state. It is the one place
// edit rules are written down; the API enforces them through Check.
type Rules map[State][]Part

// FlowRules: a flow is freely edited while it does not run; while it runs
// only its labels and its source (the source restarts, players stay).
var FlowRules = Rules{
	Standby:   {PartName, PartSource, PartOutputs, PartWindow},
	Scheduled: {PartName, PartSource, PartOutputs, PartWindow},
	Error:     {PartName, PartSource, PartOutputs, PartWindow},
	Finished:  {PartName, PartSource, PartOutputs, PartWindow},
	Running:   {PartName, PartSource},
}

// TaskRules: NotStarted: name, time, callback and source; Stopped: name,
// callback and source; otherwise nothing.
var TaskRules = Rules{
	Scheduled: {PartName, PartWindow, PartCallback, PartSource},
	Standby:   {PartName, PartCallback, PartSource},
}

// RelayRules: a relay rule may be edited in any state; a change restarts
// its pushes.
var RelayRules = Rules{
	Standby: {PartName, PartTarget, PartWindow}, Scheduled: {PartName, PartTarget, PartWindow},
	Running: {PartName, PartTarget, PartWindow}, Error: {PartName, PartTarget, PartWindow},
	Finished: {PartName, PartTarget, PartWindow}, Starting: {PartName, PartTarget, PartWindow},
	Stopping: {PartName, PartTarget, PartWindow},
}

// Check returns a Conflict problem for the first changed part that the
// state does not allow. stateName is the state as the API shows it.
func (r Rules) Check(s State, stateName string, changed ...Part) error {
	for _, p := range changed {
		if !slices.Contains(r[s], p) {
			allowed := "nothing"
			if len(r[s]) > 0 {
				allowed = fmt.Sprint(r[s])
			}
			return Conflictf(string(p), "cannot edit %s while %s (editable in this state: %s)", p, stateName, allowed)
		}
	}
	return nil
}
