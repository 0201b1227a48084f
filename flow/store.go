package flow

import "github.com/relaymesh/relaymesh/lifecycle"

// Stored is a flow as the node's objects store keeps it (objects.json).
type Stored struct {
	Spec  Spec            `json:"spec"`
	State lifecycle.State `json:"state"`
}

// Stored returns the API-made flows as the store keeps them: one starting
// as running, one stopping as standby.
func (m *Manager) Stored() []Stored {
	out := []Stored{}
	for _, f := range m.List() {
		if f.ReadOnly {
			continue
		}
		st := f.State
		switch st {
		case lifecycle.Starting:
			st = lifecycle.Running
		case lifecycle.Stopping:
			st = lifecycle.Standby
		}
		out = append(out, Stored{Spec: f.Spec, State: st})
	}
	return out
}

// LoadStored creates the flows read back from the store (lifecycle.Restore:
// those in interrupted come back stopped).
func (m *Manager) LoadStored(stored []Stored, interrupted map[string]bool) {
	for _, f := range stored {
		lifecycle.Restore("flow/"+f.Spec.ID, f.State, interrupted, func(st lifecycle.State) error {
			return m.Create(f.Spec, lifecycle.CreateOpts{From: lifecycle.FromStore, State: st})
		}, func(reason string) { m.Fail(f.Spec.ID, reason) }, m.log)
	}
}
