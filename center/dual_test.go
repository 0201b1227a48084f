package center

import (
	"net/url"
	"testing"
	"time"
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
