package center

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/srttest"
	"github.com/relaymesh/relaymesh/media/dualpath"
	"github.com/relaymesh/relaymesh/media/link"
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

// TestForwardQueueBound: a forward of a leg to the other center bounds
// its queue as the edge's legs do: while its link is down a full queue
// drops its oldest packets, so when the link comes up it sends the
// newest ones, not the stream's first seconds followed by a hole.
func TestForwardQueueBound(t *testing.T) {
	window := 900 * time.Millisecond
	sink := srttest.NewSink(t)
	var open atomic.Bool // the other center answers
	cfg := forwardConfig("live/a", window, func(int, error) (link.Target, error) {
		if !open.Load() {
			return link.Target{}, errors.New("the other center is not up yet")
		}
		return link.Target{URL: "srt://" + sink.Addr + "?streamid=publish:live/a"}, nil
	})
	if want := dualpath.QueueMaxAge(window); cfg.MaxAge != want {
		t.Errorf("the forward's queue keeps a packet %s, want %s (as an edge leg's)", cfg.MaxAge, want)
	}
	cfg.MinBackoff, cfg.MaxBackoff, cfg.Queue = 10*time.Millisecond, 20*time.Millisecond, 16
	s := link.NewMessageSender(cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	send := func(i uint32) { s.Send(link.NewMessage(srttest.Message(i, 188), 1)) }
	for i := range uint32(40) { // 40 into a queue of 16 while the link is down
		send(i)
	}
	open.Store(true)
	poll.Until(t, 10*time.Second, "the forward connects", func() bool { return s.Status().State == link.StateRunning })
	send(40)
	poll.Until(t, 10*time.Second, "the last packet arrives", func() bool { return sink.Last(40) })
	got := sink.Got()
	want := []uint32{24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40}
	if !slices.Equal(got, want) {
		t.Errorf("the other center got %v, want %v (the newest 16, then the live one)", got, want)
	}
	if s.Dropped() != 24 {
		t.Errorf("dropped %d, want 24", s.Dropped())
	}
}
