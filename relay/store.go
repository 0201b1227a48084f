package relay

import "github.com/relaymesh/relaymesh/lifecycle"

// Stored is a relay rule as the node's objects store keeps it
// (objects.json).
type Stored struct {
	Spec Spec `json:"spec"`
}

// Stored returns the API-made rules as the store keeps them.
func (m *Manager) Stored() []Stored {
	out := []Stored{}
	for _, r := range m.List() {
		if !r.ReadOnly {
			out = append(out, Stored{Spec: r.Spec})
		}
	}
	return out
}

// LoadStored creates the rules read back from the store; one that cannot
// be created is logged.
func (m *Manager) LoadStored(stored []Stored) {
	for _, r := range stored {
		if err := m.Create(r.Spec, lifecycle.CreateOpts{From: lifecycle.FromStore}); err != nil {
			m.log.Error("stored relay not restored", "relay", r.Spec.ID, "err", err)
		}
	}
}
