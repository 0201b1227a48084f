package flow

import (
	"strings"

	"github.com/relaymesh/relaymesh/lifecycle"
)

// checkCycleLocked refuses (409) a spec whose flow source takes a flow
// that, directly or through a chain of flow sources known here or from
// the cluster's flow directory, takes this flow: its media would go round
// the cycle and never come from a real source.
func (m *Manager) checkCycleLocked(spec *Spec) error {
	for i, src := range spec.sources() {
		if src.Type != SrcFlow {
			continue
		}
		path := m.pathLocked(src.Flow, spec.ID, map[string]bool{})
		if path == nil {
			continue
		}
		at := "source.flow"
		if i == 1 {
			at = "backup.flow"
		}
		cycle := append([]string{spec.ID}, path...)
		return lifecycle.Conflictf(at, "flow %q cannot take flow %q: the flow sources would make a cycle %s (each takes the next one's output), carrying no media from a real source; name a flow that does not take this one", spec.ID, src.Flow, strings.Join(cycle, " -> "))
	}
	return nil
}

// pathLocked returns a chain of flows from id to target, each taking the
// next one's output (nil: none known); seen bounds the walk.
func (m *Manager) pathLocked(id, target string, seen map[string]bool) []string {
	if id == target {
		return []string{id}
	}
	if seen[id] {
		return nil
	}
	seen[id] = true
	ad, found, _ := m.advertLocked(id)
	if !found {
		return nil
	}
	for _, next := range ad.Uses {
		if p := m.pathLocked(next, target, seen); p != nil {
			return append([]string{id}, p...)
		}
	}
	return nil
}
