package lifecycle

import (
	"fmt"
	"log/slog"
	"reflect"
)

// Declared is one kind of the objects a config declares ([[flow]],
// [[relay]], [[task]]) and how its registry changes them.
type Declared[C any] struct {
	Kind   string // "flow", "relay", "task": errors and logs name it
	ID     func(C) string
	Remove func(id string)
	Create func(C) error
	// Update changes an object in place (a running flow keeps its
	// players); nil, or an update the object's state refuses, removes the
	// object and creates it again.
	Update func(C) error
}

// CreateAll creates the objects a config declares, in its order, at the
// start; the first that fails is named by its index (flow[2]: ...).
func (d Declared[C]) CreateAll(cs []C) error {
	for i, c := range cs {
		if err := d.Create(c); err != nil {
			return fmt.Errorf("%s[%d]: %w", d.Kind, i, err)
		}
	}
	return nil
}

// Reconcile makes the objects old declared those next declares: those
// gone are removed, those new created, those changed updated; unchanged
// ones are left running untouched. It returns how to undo what it did,
// also when it failed part way (the first failed create, named by kind
// and id); an object of old that undo cannot create again is logged.
func (d Declared[C]) Reconcile(old, next []C, log *slog.Logger) (undo func(), err error) {
	replace := func(c C) error {
		if d.Update != nil && d.Update(c) == nil {
			return nil
		}
		d.Remove(d.ID(c))
		return d.Create(c)
	}
	oldBy, nextBy := map[string]C{}, map[string]C{}
	for _, c := range old {
		oldBy[d.ID(c)] = c
	}
	for _, c := range next {
		nextBy[d.ID(c)] = c
	}
	var undos []func()
	undoAll := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	restore := func(c C) {
		if err := d.Create(c); err != nil {
			log.Error(d.Kind+" of the old config not restored", d.Kind, d.ID(c), "err", err)
		}
	}
	restoreChanged := func(c C) {
		if err := replace(c); err != nil {
			log.Error(d.Kind+" of the old config not restored", d.Kind, d.ID(c), "err", err)
		}
	}
	for _, k := range SortedIDs(oldBy) {
		if _, ok := nextBy[k]; !ok {
			d.Remove(k)
			c := oldBy[k]
			undos = append(undos, func() { restore(c) })
		}
	}
	for _, k := range SortedIDs(nextBy) {
		c := nextBy[k]
		oc, had := oldBy[k]
		if had && reflect.DeepEqual(oc, c) {
			continue
		}
		var err error
		if had {
			err = replace(c)
		} else {
			err = d.Create(c)
		}
		if err != nil {
			// a failed replace may have removed the old one
			if had {
				undos = append(undos, func() { restoreChanged(oc) })
			}
			return undoAll, fmt.Errorf("%s %q: %w", d.Kind, k, err)
		}
		if had {
			undos = append(undos, func() { restoreChanged(oc) })
		} else {
			undos = append(undos, func() { d.Remove(k) })
		}
	}
	return undoAll, nil
}
