package lifecycle

import (
	"slices"
	"sync"
)

// The flow, relay and task managers each keep their objects in a map by id
// under their own mutex; these helpers are the lookups they share.

// Get returns the view of the object id, under mu.
func Get[E, V any](mu sync.Locker, objs map[string]E, id string, view func(E) V) (V, bool) {
	mu.Lock()
	defer mu.Unlock()
	e, ok := objs[id]
	if !ok {
		var zero V
		return zero, false
	}
	return view(e), true
}

// List returns the views of every object by id, under mu.
func List[E, V any](mu sync.Locker, objs map[string]E, view func(E) V) []V {
	mu.Lock()
	defer mu.Unlock()
	out := make([]V, 0, len(objs))
	for _, id := range SortedIDs(objs) {
		out = append(out, view(objs[id]))
	}
	return out
}

// IDs returns the sorted ids of the objects keep accepts, under mu.
func IDs[E any](mu sync.Locker, objs map[string]E, keep func(E) bool) []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for _, id := range SortedIDs(objs) {
		if keep(objs[id]) {
			out = append(out, id)
		}
	}
	return out
}

// SortedIDs returns the map's ids in order; the caller holds its lock.
func SortedIDs[E any](objs map[string]E) []string {
	ids := make([]string, 0, len(objs))
	for id := range objs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Origin names where an object comes from, as the API shows it: "config"
// (declared in the config file, read-only) or "api".
func Origin(readOnly bool) string {
	if readOnly {
		return "config"
	}
	return "api"
}
