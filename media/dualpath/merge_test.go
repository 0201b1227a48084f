package dualpath

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// arrival is one frame arriving on a leg at a time offset.
type arrival struct {
	leg int
	seq uint64
	at  time.Duration
}

// frames makes n RTP packets from first on with a Packetizer and parses
// them back, so the tests run over the wire format; each TS packet's
// bytes 4..12 hold its frame's seq.
func frames(t *testing.T, ssrc uint32, first uint64, n int) map[uint64][]byte {
	t.Helper()
	p := NewPacketizer(ssrc, first)
	out := map[uint64][]byte{}
	ts := make([]byte, TSPerPacket*tsSize)
	for i := range n {
		seq := first + uint64(i)
		for k := 0; k < len(ts); k += tsSize {
			ts[k] = 0x47
			binary.BigEndian.PutUint64(ts[k+4:], seq)
		}
		if err := p.Add(ts, func(pkt []byte) error { out[seq] = slices.Clone(pkt); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// both is every seq on both legs, leg 1 a little behind, except what
// drop says a leg loses.
func both(first uint64, n int, drop func(leg int, seq uint64) bool) []arrival {
	var a []arrival
	for i := range n {
		seq := first + uint64(i)
		at := time.Duration(i) * 3 * time.Millisecond
		for leg := range Legs {
			if !drop(leg, seq) {
				a = append(a, arrival{leg, seq, at + time.Duration(leg)*20*time.Millisecond})
			}
		}
	}
	slices.SortStableFunc(a, func(x, y arrival) int { return int(x.at - y.at) })
	return a
}

func TestMerger(t *testing.T) {
	const n = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	lose := func(p float64) map[uint64]bool {
		m := map[uint64]bool{}
		for i := range n {
			if rng.Float64() < p {
				m[uint64(i)] = true
			}
		}
		return m
	}
	loss5 := lose(0.05)
	var reordered []arrival
	for _, a := range both(0, n, func(leg int, _ uint64) bool { return leg == 1 }) {
		reordered = append(reordered, a)
	}
	for i := 0; i+3 < len(reordered); i += 4 { // swap neighbours: 0 1 2 3 -> 1 0 3 2
		reordered[i].seq, reordered[i+1].seq = reordered[i+1].seq, reordered[i].seq
		reordered[i+2].seq, reordered[i+3].seq = reordered[i+3].seq, reordered[i+2].seq
	}
	tests := []struct {
		name     string
		first    uint64
		arrivals []arrival
		wantLost uint64
		// wantRecovered: per leg, packets the other leg made up for
		wantRecovered [Legs]uint64
	}{
		{
			name:          "loss on one leg",
			arrivals:      both(0, n, func(leg int, seq uint64) bool { return leg == 0 && loss5[seq] }),
			wantRecovered: [Legs]uint64{uint64(len(loss5)), 0},
		},
		{
			name: "loss on both legs, disjoint",
			arrivals: both(0, n, func(leg int, seq uint64) bool {
				return (leg == 0 && seq%7 == 3) || (leg == 1 && seq%5 == 1 && seq%7 != 3)
			}),
			wantRecovered: [Legs]uint64{count(n, func(s uint64) bool { return s%7 == 3 }), count(n, func(s uint64) bool { return s%5 == 1 && s%7 != 3 })},
		},
		{
			name:          "one leg dead",
			arrivals:      both(0, n, func(leg int, _ uint64) bool { return leg == 1 }),
			wantRecovered: [Legs]uint64{0, n},
		},
		{
			name:          "reordering on the live leg",
			arrivals:      reordered,
			wantRecovered: [Legs]uint64{0, n},
		},
		{
			name:     "sequence wrap",
			first:    1<<16 - 700,
			arrivals: both(1<<16-700, n, func(leg int, seq uint64) bool { return leg == 1 && seq%3 == 0 || leg == 0 && seq%3 == 1 }),
			wantRecovered: [Legs]uint64{count(n, func(s uint64) bool { return (s+1<<16-700)%3 == 1 }),
				count(n, func(s uint64) bool { return (s+1<<16-700)%3 == 0 })},
		},
		{
			name:          "loss on both legs, the same packets",
			arrivals:      both(0, n, func(_ int, seq uint64) bool { return seq%100 == 50 }),
			wantLost:      n / 100,
			wantRecovered: [Legs]uint64{0, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := frames(t, 7, tc.first, n)
			var got []uint64
			m := NewMerger(200*time.Millisecond, func(f Frame) {
				if s := binary.BigEndian.Uint64(f.Payload[4:]); s != f.Seq {
					t.Fatalf("frame %d carries the payload of %d", f.Seq, s)
				}
				got = append(got, f.Seq)
			})
			m.SetUp(0, true)
			m.SetUp(1, true)
			t0 := time.Unix(1000, 0)
			var ps [Legs]Parser
			var last time.Duration
			for _, a := range tc.arrivals {
				f, err := ps[a.leg].Parse(wire[a.seq])
				if err != nil {
					t.Fatal(err)
				}
				m.Push(a.leg, f, t0.Add(a.at))
				last = a.at
			}
			m.Flush(t0.Add(last + time.Second))
			want := []uint64{}
			seen := map[uint64]bool{}
			for _, a := range tc.arrivals {
				seen[a.seq] = true
			}
			for i := range n {
				if s := tc.first + uint64(i); seen[s] {
					want = append(want, s)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("emitted %d frames, want %d in order (first difference at %d)", len(got), len(want), firstDiff(got, want))
			}
			st := m.Stats()
			if st.Lost != tc.wantLost || st.Emitted != uint64(len(want)) {
				t.Errorf("lost %d emitted %d, want %d and %d", st.Lost, st.Emitted, tc.wantLost, len(want))
			}
			for leg := range Legs {
				if st.Legs[leg].Recovered != tc.wantRecovered[leg] {
					t.Errorf("leg %d: recovered by the other %d, want %d", leg, st.Legs[leg].Recovered, tc.wantRecovered[leg])
				}
				l := st.Legs[leg]
				if l.First+l.Duplicates+l.Late != l.Received {
					t.Errorf("leg %d: first %d + duplicates %d + late %d != received %d", leg, l.First, l.Duplicates, l.Late, l.Received)
				}
			}
			if st.Legs[0].First+st.Legs[1].First != st.Emitted {
				t.Errorf("first on leg 0 %d + leg 1 %d != emitted %d", st.Legs[0].First, st.Legs[1].First, st.Emitted)
			}
		})
	}
}

func count(n int, f func(uint64) bool) uint64 {
	var c uint64
	for i := range n {
		if f(uint64(i)) {
			c++
		}
	}
	return c
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A gap waits one window for the other leg, and no longer; a copy that
// comes after its gap was given up counts as late, with how late it was.
func TestMergerWindow(t *testing.T) {
	// a step pushes frame seq of leg at ms, or flushes at ms (leg -1);
	// with emitted set, it is all the merge emitted until then
	type step struct {
		leg     int
		seq     uint64
		ms      int
		emitted []uint64
	}
	push := func(leg int, seq uint64, ms int, emitted ...uint64) step { return step{leg, seq, ms, emitted} }
	flush := func(ms int, emitted ...uint64) step { return step{-1, 0, ms, emitted} }
	none := []uint64{}
	tests := []struct {
		name      string
		steps     []step
		lost      uint64
		recovered *[Legs]uint64 // nil: not checked (counted as a frame leaves the history)
		late      [Legs]uint64
		lateBy    [Legs]time.Duration
	}{
		{"the other leg fills the gap in time", []step{
			push(0, 0, 0),
			{-1, 0, 99, none}, // the start waits a window
			flush(100),
			push(0, 2, 110, 0),       // 1 is missing: 2 waits
			push(1, 1, 190, 0, 1, 2), // the other leg fills the gap in time
			flush(500),
			push(1, 3, 600),
		}, 0, &[Legs]uint64{1, 2}, [Legs]uint64{}, [Legs]time.Duration{}},
		{"a copy after the window is late", []step{
			push(0, 0, 0),
			flush(100),
			push(0, 2, 110), // 1 is missing
			flush(215),      // its window closed at 210 ms: given up
			push(1, 1, 255), // 40 ms after that
		}, 1, nil, [Legs]uint64{0, 1}, [Legs]time.Duration{0, 40 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := frames(t, 9, 0, 4)
			var got []uint64
			m := NewMerger(100*time.Millisecond, func(f Frame) { got = append(got, f.Seq) })
			var ps Parser
			for i, s := range tc.steps {
				at := time.Unix(0, 0).Add(time.Duration(s.ms) * time.Millisecond)
				if s.leg < 0 {
					m.Flush(at)
				} else {
					f, err := ps.Parse(wire[s.seq])
					if err != nil {
						t.Fatal(err)
					}
					m.Push(s.leg, f, at)
				}
				if s.emitted != nil && !slices.Equal(got, s.emitted) {
					t.Fatalf("step %d (%d ms): emitted %v, want %v", i, s.ms, got, s.emitted)
				}
			}
			st := m.Stats()
			if st.Lost != tc.lost {
				t.Errorf("lost %d, want %d", st.Lost, tc.lost)
			}
			for leg := range Legs {
				l := st.Legs[leg]
				if tc.recovered != nil && l.Recovered != tc.recovered[leg] {
					t.Errorf("leg %d: recovered by the other %d, want %d", leg, l.Recovered, tc.recovered[leg])
				}
				if l.Late != tc.late[leg] || l.LateBy != tc.lateBy[leg] {
					t.Errorf("leg %d: late %d by %s, want %d by %s", leg, l.Late, l.LateBy, tc.late[leg], tc.lateBy[leg])
				}
			}
		})
	}
}

// A new SSRC is a sender restart: the merge starts over at its numbers,
// and late frames of the old session are dropped.
func TestMergerSenderRestart(t *testing.T) {
	old, fresh := frames(t, 1, 5000, 3), frames(t, 2, 0, 3)
	var got []uint64
	m := NewMerger(100*time.Millisecond, func(f Frame) { got = append(got, f.Seq) })
	var ps Parser
	now := time.Unix(0, 0)
	push := func(leg int, b []byte) {
		f, err := ps.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		m.Push(leg, f, now)
	}
	push(0, old[5000])
	push(0, old[5001])
	push(0, fresh[0])
	push(1, old[5002])
	push(0, fresh[1])
	push(1, fresh[2])
	m.Flush(now.Add(time.Second))
	if !slices.Equal(got, []uint64{5000, 5001, 0, 1, 2}) {
		t.Fatalf("emitted %v", got)
	}
	if st := m.Stats(); st.Resets != 1 || st.Legs[1].Late != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestParseRefuses(t *testing.T) {
	good := frames(t, 3, 0, 1)[0]
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"header only", good[:headerSize]},
		{"no sync byte", func() []byte { b := slices.Clone(good); b[headerSize] = 0; return b }()},
		{"partial TS packet", good[:len(good)-1]},
		{"RTP version 1", func() []byte { b := slices.Clone(good); b[0] = b[0]&0x3f | 0x40; return b }()},
		{"other payload type", func() []byte { b := slices.Clone(good); b[1] = 96; return b }()},
	}
	var ps Parser
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ps.Parse(tc.b); err == nil {
				t.Fatal("parsed")
			}
		})
	}
	if _, err := ps.Parse(good); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(frames(&testing.T{}, 3, 70000, 1)[70000])
	f.Fuzz(func(t *testing.T, b []byte) {
		var ps Parser
		fr, err := ps.Parse(b)
		if err == nil && (len(fr.Payload) == 0 || len(fr.Payload)%tsSize != 0) {
			t.Fatalf("accepted a payload of %d bytes", len(fr.Payload))
		}
	})
}

// BenchmarkMerger is the cost of merging one RTP packet that arrives on
// both legs (parse both copies, merge, emit once).
func BenchmarkMerger(b *testing.B) {
	t := &testing.T{}
	const n = 4096
	wire := frames(t, 5, 0, n)
	m := NewMerger(200*time.Millisecond, func(Frame) {})
	var ps Parser
	now := time.Unix(0, 0)
	b.ReportAllocs()
	b.SetBytes(TSPerPacket * tsSize)
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Millisecond)
		raw := wire[uint64(i%n)]
		for leg := range Legs {
			f, err := ps.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			f.Seq += uint64(i/n) * n // keep the numbers going up
			m.Push(leg, f, now)
		}
	}
}
