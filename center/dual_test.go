package center

import (
	"net/url"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media/dualpath"
)

func TestParseLeg(t *testing.T) {
	tests := []struct {
		name, query string
		leg         bool
		want        legParams
		bad         bool
	}{
		{name: "no leg: an ordinary publisher", query: "token=x"},
		{name: "edge leg", query: "leg=1&peer=tyo&lat=300ms", leg: true, want: legParams{leg: 1, peer: "tyo", legLatency: 300 * time.Millisecond}},
		{name: "forwarded leg with a window", query: "leg=0&fwd=1&win=1s", leg: true, want: legParams{forward: true, window: time.Second}},
		{name: "leg 2", query: "leg=2", leg: true, bad: true},
		{name: "window too long", query: "leg=0&win=11s", leg: true, bad: true},
		{name: "latency not a duration", query: "leg=0&lat=soon", leg: true, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, leg, err := parseLeg(q)
			if leg != tc.leg || (err != nil) != tc.bad {
				t.Fatalf("leg %v err %v, want leg %v bad %v", leg, err, tc.leg, tc.bad)
			}
			if !tc.bad && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestDualWindowFromNegotiatedLatencies: once the other center's leg
// came, the reorder window is the edge leg's latency plus that hop's
// negotiated latency (440 ms here: the listener's side asked for more
// than the caller's estimate), not an estimate from an RTT taken later,
// plus the allowance for the hosts' lag.
func TestDualWindowFromNegotiatedLatencies(t *testing.T) {
	c := &Center{}
	ds := &dualStream{rx: dualpath.NewReceiver(0, func(dualpath.Frame) {}), legLatency: 312 * time.Millisecond, hopLatency: 440 * time.Millisecond, peer: "tyo"}
	c.setWindowLocked(ds)
	if got := ds.rx.Window(); got != 1002*time.Millisecond {
		t.Errorf("window %s, want 1002ms (312 + 440 + the lag allowance, 250)", got)
	}
	ds.explicit = true
	ds.hopLatency = 100 * time.Millisecond
	c.setWindowLocked(ds)
	if got := ds.rx.Window(); got != 1002*time.Millisecond {
		t.Errorf("a configured window changed to %s", got)
	}
}
