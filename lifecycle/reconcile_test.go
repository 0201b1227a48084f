package lifecycle

import (
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"testing"
)

type decl struct{ ID, V string }

// TestDeclaredReconcile: gone objects are removed, new ones created,
// changed ones updated, unchanged ones untouched; a failed create undoes
// every change made so far.
func TestDeclaredReconcile(t *testing.T) {
	live := map[string]string{}
	var ops []string
	d := Declared[decl]{Kind: "thing", ID: func(c decl) string { return c.ID },
		Remove: func(id string) { ops = append(ops, "remove "+id); delete(live, id) },
		Create: func(c decl) error {
			if c.V == "bad" {
				return errors.New("refused")
			}
			ops = append(ops, "create "+c.ID)
			live[c.ID] = c.V
			return nil
		},
		Update: func(c decl) error { ops = append(ops, "update "+c.ID); live[c.ID] = c.V; return nil },
	}
	old := []decl{{"a", "1"}, {"b", "1"}, {"c", "1"}}
	for _, c := range old {
		live[c.ID] = c.V
	}
	next := []decl{{"b", "2"}, {"c", "1"}, {"d", "1"}}
	if _, err := d.Reconcile(old, next, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"remove a", "update b", "create d"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("ops %q, want %q", ops, want)
	}
	before := maps.Clone(live)
	undo, err := d.Reconcile(next, []decl{{"c", "1"}, {"d", "1"}, {"e", "bad"}}, slog.New(slog.DiscardHandler))
	if err == nil || err.Error() != `thing "e": refused` {
		t.Fatalf("err %v, want thing \"e\": refused", err)
	}
	undo()
	if !reflect.DeepEqual(live, before) {
		t.Errorf("after undo %v, want %v", live, before)
	}
}
