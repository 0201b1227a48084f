package task

import "github.com/relaymesh/relaymesh/lifecycle"

// Stored is a task as the node's objects store keeps it (objects.json).
type Stored struct {
	Spec   Spec            `json:"spec"`
	State  lifecycle.State `json:"state"`
	Reason string          `json:"reason,omitempty"`
	// At is the playlist item and pass a running task had reached: it
	// resumes there after a restart.
	At *Position `json:"at,omitempty"`
}

// Stored returns the API-made tasks as the store keeps them.
func (m *Manager) Stored() []Stored {
	out := []Stored{}
	for _, t := range m.List() {
		if t.ReadOnly {
			continue
		}
		st := Stored{Spec: t.Spec, State: t.Internal, Reason: t.Reason}
		if t.Internal.Active() && t.Pass > 0 {
			st.At = &Position{Item: t.Item, Pass: t.Pass}
		}
		out = append(out, st)
	}
	return out
}

// LoadStored creates the tasks read back from the store, a running one at
// the item and pass it had reached (lifecycle.Restore: those in
// interrupted come back stopped).
func (m *Manager) LoadStored(stored []Stored, interrupted map[string]bool) {
	for _, t := range stored {
		st := t.State
		if st == "" {
			st = lifecycle.Scheduled
		}
		var at Position
		if t.At != nil {
			at = *t.At
		}
		lifecycle.Restore("task/"+t.Spec.ID, st, interrupted, func(st lifecycle.State) error {
			return m.Restore(t.Spec, st, at)
		}, func(reason string) { m.Fail(t.Spec.ID, reason) }, m.deps.Log)
	}
}
