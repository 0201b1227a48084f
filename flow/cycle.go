package flow

import (
	"fmt"
	"strings"

	"github.com/relaymesh/relaymesh/lifecycle"
)

// checkCycleLocked refuses (409) a spec whose flow source takes a flow
// that, directly or through a chain of flow sources known here or from
// the cluster's flow directory, takes this flow: its media would go round
// the cycle and never come from a real source.
func (m *Manager) checkCycleLocked(spec *Spec) error {
	uses := func(id string) []string {
		ad, found, _ := m.advertLocked(id)
		if !found {
			return nil
		}
		return ad.Uses
	}
	for i, src := range spec.sources() {
		if src.Type != SrcFlow {
			continue
		}
		path := Chain(src.Flow, spec.ID, uses)
		if path == nil {
			continue
		}
		at := "source.flow"
		if i == 1 {
			at = "backup.flow"
		}
		return lifecycle.Conflictf(at, "%s", CycleMsg(spec.ID, path))
	}
	return nil
}

// Chain returns a chain of flows from id to target, each taking the next
// one's output, where uses gives the flows a flow's sources take (nil for
// a flow not known); nil when there is none.
func Chain(id, target string, uses func(id string) []string) []string {
	return chain(id, target, uses, map[string]bool{})
}

func chain(id, target string, uses func(string) []string, seen map[string]bool) []string {
	if id == target {
		return []string{id}
	}
	if seen[id] {
		return nil
	}
	seen[id] = true
	for _, next := range uses(id) {
		if p := chain(next, target, uses, seen); p != nil {
			return append([]string{id}, p...)
		}
	}
	return nil
}

// CycleMsg says why flow id cannot take the first flow of path, a Chain
// back to id.
func CycleMsg(id string, path []string) string {
	cycle := append([]string{id}, path...)
	return fmt.Sprintf("flow cycle %s: flow %q cannot take flow %q, each takes the next one's output and none gets media from a real source; name a flow that does not take this one",
		strings.Join(cycle, " -> "), id, path[0])
}
