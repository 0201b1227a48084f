package lifecycle

import (
	"strings"
	"sync"
	"testing"
)

func TestObjectHelpers(t *testing.T) {
	var mu sync.Mutex
	objs := map[string]bool{"b": true, "a": false, "c": true} // id -> read-only
	view := func(ro bool) string { return Origin(ro) }
	if v, ok := Get(&mu, objs, "b", view); !ok || v != "config" {
		t.Errorf("Get(b) = %q %v, want config", v, ok)
	}
	if _, ok := Get(&mu, objs, "z", view); ok {
		t.Error("Get(z) found an object")
	}
	if got := strings.Join(List(&mu, objs, view), ","); got != "api,config,config" {
		t.Errorf("List in id order = %s", got)
	}
	if got := strings.Join(IDs(&mu, objs, func(ro bool) bool { return ro }), ","); got != "b,c" {
		t.Errorf("IDs(read-only) = %s", got)
	}
}
