package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/test/impair/control"
)

var (
	addrA = netip.MustParseAddr("10.77.0.1")
	addrB = netip.MustParseAddr("10.77.0.2")
	addrC = netip.MustParseAddr("10.77.0.3")
	t0    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

func hdr(src, dst netip.Addr) ipv4Header { return ipv4Header{Src: src.As4(), Dst: dst.As4()} }

func ms(n int) control.Duration { return control.Duration(time.Duration(n) * time.Millisecond) }

func TestDecideMatrix(t *testing.T) {
	e := newEngine(1)
	e.setConfig(control.Config{
		Links: []control.Link{
			{Src: addrA, Dst: addrB, Delay: ms(80)},
			{Src: addrB, Dst: addrA, Delay: ms(30)},
			{Src: addrA, Dst: addrC, Loss: 1},
		},
		Blackhole: []netip.Addr{},
	})
	cases := []struct {
		name     string
		h        ipv4Header
		wantFate fate
		wantDue  time.Time
	}{
		{"a->b delayed 80ms", hdr(addrA, addrB), fateDelay, t0.Add(80 * time.Millisecond)},
		{"b->a delayed 30ms (own direction)", hdr(addrB, addrA), fateDelay, t0.Add(30 * time.Millisecond)},
		{"a->c always lost", hdr(addrA, addrC), fateLost, time.Time{}},
		{"c->a not configured", hdr(addrC, addrA), fateAccept, time.Time{}},
		{"b->c not configured", hdr(addrB, addrC), fateAccept, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, due := e.decide(c.h, t0)
			if f != c.wantFate || !due.Equal(c.wantDue) {
				t.Fatalf("decide = %v at %v, want %v at %v", f, due, c.wantFate, c.wantDue)
			}
		})
	}
}

func TestBlackholeBothDirections(t *testing.T) {
	e := newEngine(1)
	e.setConfig(control.Config{
		Links:     []control.Link{{Src: addrA, Dst: addrB, Delay: ms(10)}},
		Blackhole: []netip.Addr{addrB},
	})
	for name, h := range map[string]ipv4Header{"to": hdr(addrA, addrB), "from": hdr(addrB, addrC)} {
		t.Run(name, func(t *testing.T) {
			if f, _ := e.decide(h, t0); f != fateBlackhole {
				t.Fatalf("packet %s a blackholed host: fate %v, want blackhole", name, f)
			}
		})
	}
	e.setConfig(control.Config{})
	if f, _ := e.decide(hdr(addrA, addrB), t0); f != fateAccept {
		t.Fatalf("after lifting: fate %v, want accept", f)
	}
}

func TestLossIsSeededAndNearP(t *testing.T) {
	count := func(seed uint64) int {
		e := newEngine(seed)
		e.setConfig(control.Config{Links: []control.Link{{Src: addrA, Dst: addrB, Loss: 0.1}}})
		lost := 0
		for range 10000 {
			if f, _ := e.decide(hdr(addrA, addrB), t0); f == fateLost {
				lost++
			}
		}
		return lost
	}
	a, b := count(7), count(7)
	if a != b {
		t.Fatalf("same seed lost %d then %d packets", a, b)
	}
	// 10000 draws at p=0.1: sd is 30, so 800..1200 is over 6 sd wide.
	if a < 800 || a > 1200 {
		t.Fatalf("lost %d of 10000 at p=0.1", a)
	}
}

func TestReleaseInDueOrder(t *testing.T) {
	e := newEngine(1)
	e.hold(3, t0.Add(30*time.Millisecond))
	e.hold(1, t0.Add(10*time.Millisecond))
	e.hold(2, t0.Add(10*time.Millisecond)) // same due: after 1 (arrival order)
	e.hold(4, t0.Add(40*time.Millisecond))
	if due, ok := e.next(); !ok || !due.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("next = %v %v, want t0+10ms", due, ok)
	}
	steps := []struct {
		at   time.Duration
		want []uint32
	}{
		{9 * time.Millisecond, nil},
		{10 * time.Millisecond, []uint32{1, 2}},
		{35 * time.Millisecond, []uint32{3}},
		{time.Second, []uint32{4}},
	}
	for _, s := range steps {
		got := e.release(t0.Add(s.at), nil)
		if len(got) != len(s.want) {
			t.Fatalf("at %v released %v, want %v", s.at, got, s.want)
		}
		for i := range got {
			if got[i] != s.want[i] {
				t.Fatalf("at %v released %v, want %v", s.at, got, s.want)
			}
		}
	}
	if _, ok := e.next(); ok || e.pending() != 0 {
		t.Fatalf("heap not empty after releasing all: %d pending", e.pending())
	}
}

// Order within a direction holds under jitter and when the delay drops.
func TestOrderKept(t *testing.T) {
	cases := []struct {
		name   string
		first  control.Link
		second *control.Link // config applied halfway, nil to keep
	}{
		{name: "jitter", first: control.Link{Src: addrA, Dst: addrB, Delay: ms(20), Jitter: ms(50)}},
		{name: "delay lowered", first: control.Link{Src: addrA, Dst: addrB, Delay: ms(200)},
			second: &control.Link{Src: addrA, Dst: addrB, Delay: ms(5)}},
		{name: "link cleared", first: control.Link{Src: addrA, Dst: addrB, Delay: ms(200)},
			second: &control.Link{Src: addrA, Dst: addrC}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(3)
			e.setConfig(control.Config{Links: []control.Link{c.first}})
			var out []uint32
			now := t0
			for i := uint32(1); i <= 200; i++ {
				if i == 100 && c.second != nil {
					e.setConfig(control.Config{Links: []control.Link{*c.second}})
				}
				switch f, due := e.decide(hdr(addrA, addrB), now); f {
				case fateDelay:
					e.hold(i, due)
				case fateAccept:
					out = append(out, i)
				default:
					t.Fatalf("packet %d: fate %v", i, f)
				}
				now = now.Add(time.Millisecond)
				out = e.release(now, out)
			}
			out = e.release(now.Add(time.Hour), out)
			if len(out) != 200 {
				t.Fatalf("%d of 200 packets came out", len(out))
			}
			for i, id := range out {
				if id != uint32(i+1) {
					t.Fatalf("position %d holds packet %d: reordered", i, id)
				}
			}
		})
	}
}

// A packet let go more than control.LateThreshold after it was due counts
// as late (the tool was not scheduled in time); one on time does not.
func TestReleaseCountsLate(t *testing.T) {
	e := newEngine(1)
	e.hold(1, t0)
	e.hold(2, t0.Add(100*time.Millisecond))
	e.release(t0.Add(control.LateThreshold), nil)
	if e.late != 0 {
		t.Fatalf("released at the threshold: %d late, want 0", e.late)
	}
	e.release(t0.Add(250*time.Millisecond), nil)
	if e.late != 1 || e.maxLate != 150*time.Millisecond {
		t.Fatalf("released 150ms after due: %d late, worst %v; want 1, 150ms", e.late, e.maxLate)
	}
}
