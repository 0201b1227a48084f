package flow

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media/link"
)

// fakeGossip is a cluster's flow directory and members, as gossip would
// hold them on node "here".
type fakeGossip struct {
	flows   map[string]gossip.FlowEntry
	members map[string]gossip.Member
	rtt     map[string]time.Duration
}

func (f *fakeGossip) Name() string { return "here" }
func (f *fakeGossip) LookupFlow(id string) (gossip.FlowEntry, bool) {
	e, ok := f.flows[id]
	return e, ok
}
func (f *fakeGossip) Flows() []gossip.FlowEntry {
	var out []gossip.FlowEntry
	for _, e := range f.flows {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b gossip.FlowEntry) int { return strings.Compare(a.ID, b.ID) })
	return out
}
func (f *fakeGossip) PublishFlow(e gossip.FlowEntry) error {
	e.Node = f.Name()
	f.flows[e.ID] = e
	return nil
}
func (f *fakeGossip) UnpublishFlow(id string) error {
	if _, ok := f.flows[id]; !ok {
		return fmt.Errorf("no flow %q", id)
	}
	delete(f.flows, id)
	return nil
}
func (f *fakeGossip) Member(name string) (gossip.Member, bool) {
	m, ok := f.members[name]
	return m, ok
}
func (f *fakeGossip) RTT(node string) (time.Duration, bool) {
	r, ok := f.rtt[node]
	return r, ok
}

// fakeLocal is this node's flows.
type fakeLocal map[string]View

func (l fakeLocal) Get(id string) (View, bool) { v, ok := l[id]; return v, ok }
func (l fakeLocal) List() []View {
	var out []View
	for _, v := range l {
		out = append(out, v)
	}
	return out
}

func testDirectory(g *fakeGossip, local fakeLocal) *Directory {
	backbone := func(rtt time.Duration) link.Target {
		return link.Target{Passphrase: "backbone-key-0123", Latency: 4 * rtt, DSCP: 46}
	}
	return NewDirectory(g, local, true, backbone, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// clusterFlows: "A" on sin (its output "out" delivers into flow "C" on
// any node, its source takes B's "web"), "D" on tyo (takes B's "hls" and
// delivers into C on node fra), and this node's own advert of "B".
func clusterFlows() *fakeGossip {
	return &fakeGossip{
		flows: map[string]gossip.FlowEntry{
			"A": {ID: "A", Node: "sin", State: "running", Outputs: []gossip.FlowOutput{{Name: "out", Type: OutFlow}, {Name: "web", Type: OutHTTPFLV}},
				Uses: []gossip.FlowRef{{Flow: "B", Output: "web"}}, Inputs: []gossip.FlowInput{{Name: "in", Stream: "live/a"}},
				Delivers: []gossip.FlowDelivery{{Output: "out", Flow: "C"}}},
			"D": {ID: "D", Node: "tyo", State: "standby", Uses: []gossip.FlowRef{{Flow: "B", Output: "hls"}},
				Delivers: []gossip.FlowDelivery{{Output: "x", Flow: "C", Node: "fra"}}},
			"B": {ID: "B", Node: "here", State: "running", Outputs: []gossip.FlowOutput{{Name: "web"}},
				Uses: []gossip.FlowRef{{Flow: "B", Output: "web"}}, Delivers: []gossip.FlowDelivery{{Output: "o", Flow: "C"}}},
			"E": {ID: "E", Node: "fra", State: "running", Inputs: []gossip.FlowInput{{Name: "in", Stream: "live/e"}}},
			"F": {ID: "F", Node: "sin", State: "running"},
		},
		members: map[string]gossip.Member{
			"sin": {Name: "sin", Meta: gossip.NodeMeta{Addrs: gossip.Addrs{Backbone: "192.0.2.1:9000"}}},
			"fra": {Name: "fra"}, // an edge: no backbone listener
		},
		rtt: map[string]time.Duration{"sin": 50 * time.Millisecond},
	}
}

func TestDirectoryLookup(t *testing.T) {
	d := testDirectory(clusterFlows(), fakeLocal{})
	cases := []struct {
		name  string
		id    string
		want  Advert
		found bool
	}{
		{"other node's flow", "A", Advert{Node: "sin", State: lifecycle.Running, Outputs: []string{"out", "web"}, Uses: []string{"B"}}, true},
		{"without outputs", "D", Advert{Node: "tyo", State: lifecycle.Standby, Uses: []string{"B"}}, true},
		{"this node's own advert is left to the manager", "B", Advert{}, false},
		{"unknown", "Z", Advert{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := d.LookupFlow(c.id)
			if ok != c.found || !reflect.DeepEqual(got, c.want) {
				t.Errorf("LookupFlow(%q) = %+v, %v; want %+v, %v", c.id, got, ok, c.want, c.found)
			}
		})
	}
}

func TestDirectoryUsers(t *testing.T) {
	d := testDirectory(clusterFlows(), fakeLocal{})
	cases := []struct {
		name, id, output string
		want             []string
	}{
		{"one output (this node's own use is not counted)", "B", "web", []string{"A (node sin)"}},
		{"any output", "B", "", []string{"A (node sin)", "D (node tyo)"}},
		{"unused output", "B", "rtmp", nil},
		{"unused flow", "A", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := d.Users(c.id, c.output); !slices.Equal(got, c.want) {
				t.Errorf("Users(%q, %q) = %q, want %q", c.id, c.output, got, c.want)
			}
		})
	}
}

func TestDirectoryDeliveredBy(t *testing.T) {
	d := testDirectory(clusterFlows(), fakeLocal{})
	// D's output names node fra, not this one; B's is this node's own
	want := []string{`output "out" of flow A (node sin)`}
	if got := d.DeliveredBy("C"); !slices.Equal(got, want) {
		t.Errorf("DeliveredBy(C) = %q, want %q", got, want)
	}
	if got := d.DeliveredBy("A"); got != nil {
		t.Errorf("DeliveredBy(A) = %q, want none", got)
	}
}

func TestDirectoryDeliver(t *testing.T) {
	d := testDirectory(clusterFlows(), fakeLocal{})
	cases := []struct {
		name, id, node string
		err            string
	}{
		{"unknown flow", "Z", "", `no node of the cluster has a flow "Z"`},
		{"flow on this node", "B", "", `flow "B" runs on this node`},
		{"flow on another node than named", "A", "tyo", `flow "A" is on node sin, not on node tyo`},
		{"no push source", "F", "", `flow "F" on node sin has no rtmp-push or srt-listener source`},
		{"node without backbone", "E", "", "node fra of flow \"E\" has no backbone listener (it is an edge)"},
		{"to the flow's push source", "A", "sin", ""},
		{"any node", "A", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.Deliver(c.id, c.node)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Deliver(%q, %q) = %v, want an error saying %q", c.id, c.node, err, c.err)
				}
				return
			}
			want := link.Target{URL: "srt://192.0.2.1:9000?streamid=publish%3Alive%2Fa", Passphrase: "backbone-key-0123", PBKeyLen: 32,
				Latency: 200 * time.Millisecond, DSCP: 46, ConnectTimeout: link.ConnectTimeoutFor(50 * time.Millisecond)}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Deliver(%q, %q) = %+v, %v; want %+v", c.id, c.node, got, err, want)
			}
		})
	}
}

func TestEntryOf(t *testing.T) {
	many := make([]Output, 70)
	for i := range many {
		many[i] = Output{Name: fmt.Sprintf("o%d", i), Type: OutFlow, Flow: "X"}
	}
	cases := []struct {
		name string
		v    View
		want gossip.FlowEntry
	}{
		{"push sources, primary first", View{State: lifecycle.Running, Spec: Spec{ID: "p",
			Source: Source{Name: "main", Type: SrcRTMPPush, Stream: "live/m"}, Backup: &Source{Name: "bak", Type: SrcSRTListener, Stream: "live/b"},
			Outputs: []Output{{Name: "web", Type: OutHTTPFLV}}}},
			gossip.FlowEntry{ID: "p", State: "running", Outputs: []gossip.FlowOutput{{Name: "web", Type: OutHTTPFLV}},
				Inputs: []gossip.FlowInput{{Name: "main", Stream: "live/m"}, {Name: "bak", Stream: "live/b"}}}},
		{"flow source and delivering output", View{State: lifecycle.Standby, Spec: Spec{ID: "q",
			Source:  Source{Name: "up", Type: SrcFlow, Flow: "A", Output: "out"},
			Outputs: []Output{{Name: "to-c", Type: OutFlow, Flow: "C", Node: "fra"}, {Name: "unnamed", Type: OutFlow}}}},
			gossip.FlowEntry{ID: "q", State: "standby", Outputs: []gossip.FlowOutput{{Name: "to-c", Type: OutFlow}, {Name: "unnamed", Type: OutFlow}},
				Uses: []gossip.FlowRef{{Flow: "A", Output: "out"}}, Delivers: []gossip.FlowDelivery{{Output: "to-c", Flow: "C", Node: "fra"}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := EntryOf(c.v); !reflect.DeepEqual(got, c.want) {
				t.Errorf("EntryOf = %+v\nwant %+v", got, c.want)
			}
		})
	}
	t.Run("capped", func(t *testing.T) {
		e := EntryOf(View{Spec: Spec{ID: "big", Source: Source{Type: SrcRTMPPush}, Outputs: many}})
		if len(e.Outputs) != 64 || len(e.Delivers) != gossip.MaxFlowDelivers {
			t.Errorf("%d outputs, %d delivers advertised; want 64 and %d", len(e.Outputs), len(e.Delivers), gossip.MaxFlowDelivers)
		}
	})
}

// TestDirectorySync: Sync advertises every flow of the node and withdraws
// the node's adverts of flows it no longer has, leaving other nodes' alone.
func TestDirectorySync(t *testing.T) {
	g := clusterFlows()
	local := fakeLocal{"N": View{State: lifecycle.Running, Spec: Spec{ID: "N", Source: Source{Type: SrcRTMPPush, Stream: "live/n"}}}}
	d := testDirectory(g, local)
	d.Sync()
	if e, ok := g.flows["N"]; !ok || e.Node != "here" || e.State != "running" {
		t.Errorf("flow N advertised as %+v, %v; want it running on here", e, ok)
	}
	if _, ok := g.flows["B"]; ok {
		t.Error("the advert of B, which this node no longer has, was kept")
	}
	for _, id := range []string{"A", "D", "E", "F"} {
		if _, ok := g.flows[id]; !ok {
			t.Errorf("other node's flow %s withdrawn", id)
		}
	}
	delete(local, "N")
	d.Advertise("N")
	if _, ok := g.flows["N"]; ok {
		t.Error("a deleted flow stays advertised")
	}
}
