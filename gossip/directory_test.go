package gossip

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestDirectoryMerge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDirectory()
	d.now = func() time.Time { return now }

	a := d.claim("live/a", "n1")
	if a.Version < uint64(now.UnixMicro()) {
		t.Errorf("version %d below the wall clock %d", a.Version, now.UnixMicro())
	}
	tests := []struct {
		name      string
		in        DirEntry
		ownerGone bool
		changed   bool
		owner     string
		deleted   bool
	}{
		{"older claim loses", DirEntry{Stream: "live/a", Node: "n2", Version: a.Version - 1}, false, false, "n1", false},
		{"same version, larger name wins", DirEntry{Stream: "live/a", Node: "n2", Version: a.Version}, false, true, "n2", false},
		{"newer claim wins", DirEntry{Stream: "live/a", Node: "n1", Version: a.Version + 5}, false, true, "n1", false},
		{"duplicate ignored", DirEntry{Stream: "live/a", Node: "n1", Version: a.Version + 5}, false, false, "n1", false},
		{"newer tombstone wins", DirEntry{Stream: "live/a", Node: "n1", Version: a.Version + 6, Deleted: true}, false, true, "n1", true},
		{"older claim cannot resurrect", DirEntry{Stream: "live/a", Node: "n3", Version: a.Version + 2}, false, false, "n1", true},
		{"claim of a dead owner ignored", DirEntry{Stream: "live/a", Node: "n4", Version: a.Version + 100}, true, false, "n1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.apply(tt.in, tt.ownerGone); got != tt.changed {
				t.Errorf("apply changed = %v, want %v", got, tt.changed)
			}
			e, _ := d.lookup("live/a")
			if e.Node != tt.owner || e.Deleted != tt.deleted {
				t.Errorf("entry now %s deleted=%v, want %s deleted=%v", e.Node, e.Deleted, tt.owner, tt.deleted)
			}
		})
	}
	// The clock moved past every version seen: a new claim beats them all.
	b := d.claim("live/b", "n1")
	if b.Version <= a.Version+100 {
		t.Errorf("new version %d not above seen %d", b.Version, a.Version+100)
	}
	if _, ok := d.release("live/b", "n9"); ok {
		t.Error("a non-owner released live/b")
	}
	if _, ok := d.release("live/b", "n1"); !ok {
		t.Error("the owner could not release live/b")
	}
	d.claim("live/c", "n2")
	d.claim("live/d", "n2")
	if got := d.dropOwner("n2"); !slices.Equal(got, []string{"live/c", "live/d"}) {
		t.Errorf("dropOwner = %v, want [live/c live/d]", got)
	}
	now = now.Add(time.Hour)
	d.gc(time.Minute)
	if got := len(d.snapshot()); got != 0 {
		t.Errorf("after gc %d entries remain, want 0 (only old tombstones were left)", got)
	}
}

func TestWireRoundTrip(t *testing.T) {
	entries := []DirEntry{
		{Stream: "live/a", Node: "n1", Version: 1},
		{Stream: "live/b", Node: "n2", Version: 1 << 60, Deleted: true},
	}
	m, err := decodeMessage(encodeState(entries))
	if err != nil || m.kind != kindState || !reflect.DeepEqual(m.entries, entries) {
		t.Errorf("state round trip = %+v, %v", m, err)
	}
	m, err = decodeMessage(encodeEntry(entries[1]))
	if err != nil || len(m.entries) != 1 || m.entries[0] != entries[1] {
		t.Errorf("entry round trip = %+v, %v", m, err)
	}
	m, err = decodeMessage(encodeLeave("n7"))
	if err != nil || m.leaving != "n7" {
		t.Errorf("leave round trip = %+v, %v", m, err)
	}
	bad := map[string][]byte{
		"empty":         {},
		"unknown kind":  {0x7f},
		"truncated":     encodeEntry(entries[0])[:5],
		"trailing":      append(encodeEntry(entries[0]), 0),
		"huge count":    {kindState, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"unknown flags": {kindEntry, 1, 0x80, 1, 'a', 1, 'b'},
		"empty name":    {kindEntry, 1, 0, 1, 'a', 0},
		"long stream":   append([]byte{kindEntry, 1, 0, 0xff, 0x7f}, bytes.Repeat([]byte("a"), 300)...),
		"empty leave":   {kindLeave, 0},
		"short coord":   nil,
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeMessage(b); err == nil {
				t.Errorf("decodeMessage(%x) accepted", b)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeEntry(DirEntry{Stream: "live/a", Node: "n1", Version: 42}))
	f.Add(encodeState([]DirEntry{{Stream: "live/a", Node: "n1", Version: 1}, {Stream: "x/y", Node: "n2", Version: 9, Deleted: true}}))
	f.Add(encodeLeave("n1"))
	f.Add(encodeFlowEntry(FlowEntry{ID: "A", Node: "n1", Version: 3, State: "running", Outputs: []FlowOutput{{"o", "flow"}}, Uses: []FlowRef{{"B", "x"}}}))
	f.Add([]byte{kindState, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		var again []byte
		switch m.kind {
		case kindEntry:
			again = encodeEntry(m.entries[0])
		case kindState:
			again = encodeState(m.entries)
		case kindLeave:
			again = encodeLeave(m.leaving)
		case kindFlow:
			again = encodeFlowEntry(m.flows[0])
		case kindStateFlows:
			again = encodeStateFlows(m.entries, m.flows)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x", b, again)
		}
		d := newDirectory()
		for _, e := range m.entries {
			d.apply(e, false)
		}
	})
}
