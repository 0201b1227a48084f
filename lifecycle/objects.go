package lifecycle

import "slices"

// SortedIDs returns the map's ids in order.
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
