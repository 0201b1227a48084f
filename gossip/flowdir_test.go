package gossip

import (
	"reflect"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

func TestFlowWireRoundTrip(t *testing.T) {
	f := FlowEntry{ID: "FlowA", Node: "n1", Version: 7, State: "running",
		Outputs: []FlowOutput{{"out1", "rtmp-pull"}, {"out2", "flow"}}, Uses: []FlowRef{{"Up", "o"}},
		Inputs: []FlowInput{{"primary", "live/a"}}}
	m, err := decodeMessage(encodeFlowEntry(f))
	if err != nil || len(m.flows) != 1 || !reflect.DeepEqual(m.flows[0], f) {
		t.Errorf("flow round trip = %+v, %v", m, err)
	}
	// delivering outputs ride behind a flag: an entry without them is
	// encoded as before
	d := f
	d.Delivers = []FlowDelivery{{"toB", "FlowB", "fra"}, {"toC", "FlowC", ""}}
	if m, err := decodeMessage(encodeFlowEntry(d)); err != nil || len(m.flows) != 1 || !reflect.DeepEqual(m.flows[0], d) {
		t.Errorf("flow with delivers round trip = %+v, %v", m, err)
	}
	dir := []DirEntry{{Stream: "live/a", Node: "n1", Version: 1}}
	tomb := FlowEntry{ID: "Gone", Node: "n2", Version: 9, Deleted: true}
	m, err = decodeMessage(encodeStateFlows(dir, []FlowEntry{f, tomb}))
	if err != nil || !reflect.DeepEqual(m.entries, dir) || !reflect.DeepEqual(m.flows, []FlowEntry{f, tomb}) {
		t.Errorf("state round trip = %+v, %v", m, err)
	}
	bad := map[string][]byte{
		"truncated":        encodeFlowEntry(f)[:8],
		"trailing":         append(encodeFlowEntry(f), 0),
		"many outputs":     {kindFlow, 1, 0, 1, 'a', 1, 'b', 0, 0xff, 0x01},
		"empty id":         {kindFlow, 1, 0, 0, 1, 'b', 0, 0, 0, 0},
		"unknown flags":    {kindFlow, 1, 0x80, 1, 'a', 1, 'b', 0, 0, 0, 0},
		"many inputs":      {kindFlow, 1, 0, 1, 'a', 1, 'b', 0, 0, 0, 3, 1, 'x', 1, 'y', 1, 'x', 1, 'y', 1, 'x', 1, 'y'},
		"no inputs part":   {kindFlow, 1, 0, 1, 'a', 1, 'b', 0, 0, 0},
		"no delivers part": {kindFlow, 1, 2, 1, 'a', 1, 'b', 0, 0, 0, 0},
		"many delivers":    {kindFlow, 1, 2, 1, 'a', 1, 'b', 0, 0, 0, 0, 0x40},
		"empty deliver":    {kindFlow, 1, 2, 1, 'a', 1, 'b', 0, 0, 0, 0, 1, 0, 0, 0},
		"huge flow list":   {kindStateFlows, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeMessage(b); err == nil {
				t.Errorf("decodeMessage(%x) accepted", b)
			}
		})
	}
}

// TestFlowPropagation: a flow advertised by one node is known to every
// node, a late joiner learns it by push/pull, an update replaces it, a
// withdrawal removes it, and the flows of a node that failed are dropped.
func TestFlowPropagation(t *testing.T) {
	nodes := startCluster(t, 3, "")
	poll.Until(t, 10*time.Second, "3-node convergence", func() bool {
		for _, n := range nodes {
			if aliveCount(n.Cluster) != 3 {
				return false
			}
		}
		return true
	})
	seen := func(id, state string) func() bool {
		return func() bool {
			for _, n := range nodes {
				e, ok := n.LookupFlow(id)
				if state == "" && ok || state != "" && (!ok || e.State != state || e.Node != "n1") {
					return false
				}
			}
			return true
		}
	}
	a := FlowEntry{ID: "A", State: "standby", Outputs: []FlowOutput{{"o", "rtmp-pull"}}}
	if err := nodes[1].PublishFlow(a); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "A standby everywhere", seen("A", "standby"))
	a.State = "running"
	if err := nodes[1].PublishFlow(a); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "A running everywhere", seen("A", "running"))
	if err := nodes[1].PublishFlow(FlowEntry{ID: "B", State: "running"}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].UnpublishFlow("B"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "B gone everywhere", seen("B", ""))

	late := startNode(t, "late", NodeMeta{Role: RoleEdge}, "")
	if err := late.Join([]string{nodes[0].Addr().String()}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "late joiner to know A", func() bool {
		e, ok := late.LookupFlow("A")
		return ok && e.State == "running" && len(e.Outputs) == 1 && e.Outputs[0].Name == "o"
	})
	if _, ok := late.LookupFlow("B"); ok {
		t.Error("late joiner sees withdrawn flow B")
	}

	nodes[1].cancel()
	if err := nodes[1].Close(); err != nil { // no Leave: a crash
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "A dropped with its failed node", func() bool {
		_, ok0 := nodes[0].LookupFlow("A")
		_, ok2 := nodes[2].LookupFlow("A")
		return !ok0 && !ok2
	})
}
