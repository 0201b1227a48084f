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
	// delivers: flow id -> the outputs of other nodes delivering into it
	delivers map[string][]string
	pulls    bool
}

func (f *fakeCluster) DeliveredBy(id string) []string { return f.delivers[id] }

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
	cases := []changeCase{ // of flow A
		{name: "rename an output a remote flow takes", spec: ptr(with(renamed, free, mine)), want: `output "out" of flow "A" is the source of flow B (node fra)`},
		{name: "remove an output a local flow takes", spec: ptr(with(out, free)), want: `output "mine" of flow "A" is the source of flow C (this node)`},
		{name: "delete the flow", want: `flow "A" is the source of flow C (this node), B (node fra)`},
		{name: "remove an output nobody takes", spec: ptr(with(out, mine))},
	}
	for _, c := range cases {
		c.id = "A"
		c.run(t, m)
	}
}

func ptr[T any](v T) *T { return &v }

// TestDeliveryTargetInUse: a flow that flow outputs deliver into (on this
// node or another) cannot be deleted, nor lose or rename the push source
// they deliver into (409 naming who delivers); its other changes, and any
// change of a flow nobody delivers into, are accepted.
func TestDeliveryTargetInUse(t *testing.T) {
	fc := &fakeCluster{flows: map[string]Advert{}, delivers: map[string][]string{"R": {`output "toR" of flow A (node sin)`}}}
	m := newTestManager(fc)
	push := Source{Type: SrcRTMPPush}
	play := []Output{{Name: "play", Type: OutRTMPPull}}
	for _, s := range []Spec{
		{ID: "L", Source: push, Outputs: play}, // a local flow delivers into it
		{ID: "R", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h/a/b"}, Backup: &Source{Type: SrcSRTListener}, Outputs: play}, // a remote one into its backup
		{ID: "F", Source: push, Outputs: play}, // nobody does
		{ID: "D", Source: push, Outputs: []Output{{Name: "toL", Type: OutFlow, Flow: "L"}, {Name: "elsewhere", Type: OutFlow, Flow: "F", Node: "tyo"}}},
	} {
		if err := m.Create(s, lifecycle.CreateOpts{}); err != nil {
			t.Fatalf("create %s: %v", s.ID, err)
		}
	}
	spec := func(id string, edit func(*Spec)) *Spec {
		v, _ := m.Get(id)
		s := v.Spec
		if s.Backup != nil {
			b := *s.Backup
			s.Backup = &b
		}
		edit(&s)
		return &s
	}
	cases := []changeCase{
		{"delete a flow a local output delivers into", "L", nil, `flow "L" is where output "toL" of flow D (this node) delivers`},
		{"rename its push source", "L", spec("L", func(s *Spec) { s.Source.Name = "main" }), `source "primary" of flow "L" is where output "toL" of flow D (this node) delivers`},
		{"make its push source a pull", "L", spec("L", func(s *Spec) { s.Source = Source{Name: "primary", Type: SrcRTMPPull, URL: "rtmp://h/a/b"} }), `source "primary" of flow "L" is where output "toL"`},
		{"delete a flow a remote output delivers into", "R", nil, `flow "R" is where output "toR" of flow A (node sin) delivers`},
		{"remove the backup a remote output delivers into", "R", spec("R", func(s *Spec) { s.Backup = nil }), `source "backup" of flow "R" is where output "toR" of flow A (node sin) delivers`},
		{"change the push source's stream", "L", spec("L", func(s *Spec) { s.Source.Stream = "live/l" }), ""},
		{"switch rtmp-push to srt-listener, same name", "L", spec("L", func(s *Spec) { s.Source.Type = SrcSRTListener }), ""},
		{"change the primary pull of a flow fed into its backup", "R", spec("R", func(s *Spec) { s.Source.URL = "rtmp://h/a/c" }), ""},
		{"delete a flow an output of another node's flow names elsewhere", "F", nil, ""},
		{"delete the delivering flow", "D", nil, ""},
		{"delete L once nothing delivers into it", "L", nil, ""},
	}
	for _, c := range cases {
		c.run(t, m)
	}
}

// changeCase is an update (spec) or deletion (spec nil) of flow id,
// refused as a conflict containing want or accepted (want "").
type changeCase struct {
	name string
	id   string
	spec *Spec
	want string
}

func (c changeCase) run(t *testing.T, m *Manager) {
	t.Run(c.name, func(t *testing.T) {
		var err error
		if c.spec == nil {
			err = m.Delete(c.id)
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
