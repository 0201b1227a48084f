package flow

import (
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/lifecycle"
)

// TestSourceCycle: a flow source that takes, directly or through a chain
// of flow sources (on this node or known from the cluster), a flow that
// takes this one is refused at create and update with 409 naming the
// cycle; chains that end at a real source are accepted.
func TestSourceCycle(t *testing.T) {
	fc := &fakeCluster{pulls: true, flows: map[string]Advert{
		"X": {Node: "sin", State: lifecycle.Running, Outputs: []string{"o"}, Uses: []string{"Y"}},
		"Y": {Node: "tyo", State: lifecycle.Running, Outputs: []string{"o"}, Uses: []string{"C"}},
		"Z": {Node: "sin", State: lifecycle.Running, Outputs: []string{"o"}, Uses: []string{"Unknown"}},
	}}
	m := newTestManager(fc)
	play := []Output{{Name: "o", Type: OutRTMPPull}}
	takes := func(flow string) Source { return Source{Type: SrcFlow, Flow: flow, Output: "o"} }
	for _, s := range []Spec{
		{ID: "B", Source: takes("A"), Outputs: play}, // A is not there yet
		{ID: "D", Source: Source{Type: SrcRTMPPush}, Outputs: play},
		{ID: "E", Source: takes("D"), Outputs: play},
		{ID: "F", Source: takes("E"), Outputs: play},
	} {
		if err := m.Create(s, lifecycle.CreateOpts{}); err != nil {
			t.Fatalf("create %s: %v", s.ID, err)
		}
	}
	backup := takes("B")
	cases := []struct {
		name   string
		spec   Spec
		update bool
		field  string
		want   string // "" accepted
	}{
		{name: "create A taking B, which takes A", spec: Spec{ID: "A", Source: takes("B"), Outputs: play}, field: "source.flow", want: "A -> B -> A"},
		{name: "create C taking X, through other nodes back to C", spec: Spec{ID: "C", Source: takes("X"), Outputs: play}, field: "source.flow", want: "C -> X -> Y -> C"},
		{name: "create A whose backup takes B", spec: Spec{ID: "A", Source: Source{Type: SrcRTMPPush}, Backup: &backup, Outputs: play}, field: "backup.flow", want: "A -> B -> A"},
		{name: "update D to take F, which takes E, which takes D", spec: Spec{ID: "D", Source: takes("F"), Outputs: play}, update: true, field: "source.flow", want: "D -> F -> E -> D"},
		{name: "update D to take E", spec: Spec{ID: "D", Source: takes("E"), Outputs: play}, update: true, field: "source.flow", want: "D -> E -> D"},
		{name: "create G taking Z, whose chain ends elsewhere", spec: Spec{ID: "G", Source: takes("Z"), Outputs: play}},
		{name: "create H taking F, a chain down to a push source", spec: Spec{ID: "H", Source: takes("F"), Outputs: play}},
		{name: "update F to take D directly", spec: Spec{ID: "F", Source: takes("D"), Outputs: play}, update: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.update {
				err = m.Update(c.spec)
			} else {
				err = m.Create(c.spec, lifecycle.CreateOpts{})
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			p := lifecycle.AsProblem(err)
			if err == nil || p.Kind != lifecycle.Conflict || p.Field != c.field || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v (%+v), want a conflict on %s naming %q", err, p, c.field, c.want)
			}
		})
	}
}
