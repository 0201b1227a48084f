package flow

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/lifecycle"
)

// fakeCluster advertises flows of other nodes and their users.
type fakeCluster struct {
	flows map[string]Advert
	users map[string][]string // "flow/output" -> users
	pulls bool
}

func (f *fakeCluster) Self() string { return "here" }
func (f *fakeCluster) Pulls() bool  { return f.pulls }
func (f *fakeCluster) LookupFlow(id string) (Advert, bool) {
	ad, ok := f.flows[id]
	return ad, ok
}
func (f *fakeCluster) Users(id, output string) []string {
	if output == "" {
		var out []string
		for k, u := range f.users {
			if strings.HasPrefix(k, id+"/") {
				out = append(out, u...)
			}
		}
		return out
	}
	return f.users[id+"/"+output]
}

func TestResolve(t *testing.T) {
	src := &Source{Type: SrcFlow, Flow: "A", Output: "out"}
	onSin := &Source{Type: SrcFlow, Flow: "A", Output: "out", Node: "sin"}
	running := Advert{Node: "sin", State: lifecycle.Running, Outputs: []string{"out", "other"}}
	cases := []struct {
		name               string
		src                *Source
		ad                 Advert
		found, local, pull bool
		live               bool
		state, reason      string
	}{
		{"not found", src, Advert{}, false, false, true, false, RefNotFound, `no node of the cluster has a flow "A"`},
		{"not started", src, Advert{Node: "sin", State: lifecycle.Standby, Outputs: []string{"out"}}, true, false, true, false, RefNotStarted, `flow "A" on node sin is standby`},
		{"error state", src, Advert{Node: "sin", State: lifecycle.Error, Outputs: []string{"out"}}, true, false, true, false, RefNotStarted, "is error"},
		{"no output", src, Advert{Node: "sin", State: lifecycle.Running, Outputs: []string{"other"}}, true, false, true, false, RefNoOutput, `has no output "out" (it has other)`},
		{"no outputs at all", src, Advert{Node: "sin", State: lifecycle.Running}, true, false, true, false, RefNoOutput, "(it has none)"},
		{"named node differs", &Source{Type: SrcFlow, Flow: "A", Output: "out", Node: "tyo"}, running, true, false, true, false, RefOtherNode, "not on node tyo"},
		{"named node matches", onSin, running, true, false, true, true, RefConnected, ""},
		{"remote running, media on its way", src, running, true, false, true, false, RefWaiting, "no media from it over the backbone"},
		{"remote running, media arrives", src, running, true, false, true, true, RefConnected, ""},
		{"remote starting", src, Advert{Node: "sin", State: lifecycle.Starting, Outputs: []string{"out"}}, true, false, true, false, RefWaiting, "is starting"},
		{"edge cannot pull", src, running, true, false, false, false, RefWaiting, "does not pull other nodes' streams"},
		{"local running, silent", src, Advert{Node: "here", State: lifecycle.Running, Outputs: []string{"out"}}, true, true, false, false, RefWaiting, "runs here and carries no media"},
		{"local standby", src, Advert{Node: "here", State: lifecycle.Standby, Outputs: []string{"out"}}, true, true, false, false, RefNotStarted, "on this node is standby"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Resolve(c.src, c.ad, c.found, c.local, c.pull, c.live)
			if r.State != c.state || !strings.Contains(r.Reason, c.reason) || (c.reason == "") != (r.Reason == "") {
				t.Errorf("Resolve = %+v, want state %s, reason containing %q", r, c.state, c.reason)
			}
		})
	}
}

func newTestManager(fc *fakeCluster) *Manager {
	m := NewManager(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), lifecycle.Env{})
	if fc != nil {
		m.Cluster = fc
	}
	return m
}

// TestFlowSourceWarnings: a flow source whose flow is missing, stopped or
// without the output is created with a warning, not refused; the warning
// goes once the reference resolves.
func TestFlowSourceWarnings(t *testing.T) {
	fc := &fakeCluster{flows: map[string]Advert{}, pulls: true}
	m := newTestManager(fc)
	b := Spec{ID: "B", Source: Source{Type: SrcFlow, Flow: "A", Output: "out"}, Outputs: []Output{{Name: "play", Type: OutRTMPPull}}}
	if err := m.Create(b, lifecycle.CreateOpts{}); err != nil {
		t.Fatalf("create B before A exists: %v", err)
	}
	warn := func() string {
		v, _ := m.Get("B")
		return strings.Join(v.Warnings, "; ")
	}
	if w := warn(); !strings.Contains(w, `no node of the cluster has a flow "A"`) {
		t.Errorf("warnings %q, want A not found", w)
	}
	fc.flows["A"] = Advert{Node: "sin", State: lifecycle.Standby, Outputs: []string{"out"}}
	if w := warn(); !strings.Contains(w, `flow "A" on node sin is standby`) {
		t.Errorf("warnings %q, want A not started", w)
	}
	fc.flows["A"] = Advert{Node: "sin", State: lifecycle.Running, Outputs: []string{"out"}}
	if w := warn(); w != "" {
		t.Errorf("warnings %q once A runs with the output, want none", w)
	}
	// a local flow of that id is found before the cluster's
	a := Spec{ID: "A", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "else", Type: OutRTMPPull}}}
	if err := m.Create(a, lifecycle.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	if w := warn(); !strings.Contains(w, `flow "A" on this node has no output "out" (it has else)`) {
		t.Errorf("warnings %q, want the local A's missing output", w)
	}
}

// TestOutputInUse: renaming or removing an output another flow takes, on
// this node or any other, is refused with 409 naming the user; so is
// deleting the flow. Outputs nobody takes change freely.
func TestOutputInUse(t *testing.T) {
	fc := &fakeCluster{flows: map[string]Advert{}, users: map[string][]string{"A/out": {"B (node fra)"}}}
	m := newTestManager(fc)
	a := Spec{ID: "A", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "out", Type: OutRTMPPull}, {Name: "free", Type: OutHTTPFLV}, {Name: "mine", Type: OutHTTPFLV}}}
	if err := m.Create(a, lifecycle.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	local := Spec{ID: "C", Source: Source{Type: SrcFlow, Flow: "A", Output: "mine"}, Outputs: []Output{{Name: "p", Type: OutRTMPPull}}}
	if err := m.Create(local, lifecycle.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	with := func(outs ...Output) Spec { s := a; s.Outputs = outs; return s }
	out, free, mine := a.Outputs[0], a.Outputs[1], a.Outputs[2]
	renamed := out
	renamed.Name = "out2"
	cases := []struct {
		name string
		spec *Spec // nil: delete
		want string
	}{
		{"rename an output a remote flow takes", ptr(with(renamed, free, mine)), `output "out" of flow "A" is the source of flow B (node fra)`},
		{"remove an output a local flow takes", ptr(with(out, free)), `output "mine" of flow "A" is the source of flow C (this node)`},
		{"delete the flow", nil, `flow "A" is the source of flow C (this node), B (node fra)`},
		{"remove an output nobody takes", ptr(with(out, mine)), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.spec == nil {
				err = m.Delete("A")
			} else {
				err = m.Update(*c.spec)
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if p := lifecycle.AsProblem(err); err == nil || p.Kind != lifecycle.Conflict || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a conflict containing %q", err, c.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
