package link

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/srttest"
)

// TestMessageSenderMaxAge: a sender whose link comes up only after
// messages queued for longer than MaxAge (a dual-path leg whose center
// was not available yet; their age is set, not waited for) and after its
// queue overflowed sends none of
// the stale ones and no hole: the listener gets the newest queued
// messages that are younger than MaxAge, then the fresh ones, in order.
// Without MaxAge it gets the first queued messages, then a hole. A
// session bound (SessionMaxAge) below MaxAge applies to that session.
func TestMessageSenderMaxAge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		session time.Duration // what SessionMaxAge says
	}{{"max age", time.Minute, 0}, {"none", 0, 0}, {"session bound", time.Hour, time.Minute}} {
		t.Run(tc.name, func(t *testing.T) {
			sink := srttest.NewSink(t)
			var open atomic.Bool // the link may connect
			s := NewMessageSender(MessageSenderConfig{Key: "live/a", Queue: 16, MaxAge: tc.maxAge,
				SessionMaxAge: func() time.Duration { return tc.session },
				MinBackoff:    10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
				Next: func(int, error) (Target, error) {
					if !open.Load() {
						return Target{}, errors.New("no center yet")
					}
					return Target{URL: "srt://" + sink.Addr + "?streamid=publish:live/a"}, nil
				}}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			send := func(i uint32, age time.Duration) {
				m := NewMessage(srttest.Message(i, 188), 1)
				m.at = m.at.Add(-age) // made that long ago
				s.Send(m)
			}
			for i := range uint32(40) { // stale: 40 into a queue of 16, made 2 minutes ago
				send(i, 2*time.Minute)
			}
			for i := uint32(40); i < 44; i++ { // young: queued, not stale
				send(i, 0)
			}
			open.Store(true)
			poll.Until(t, 10*time.Second, "the link connects", func() bool { return s.Status().State == StateRunning })
			for i := uint32(44); i < 50; i++ { // fresh
				send(i, 0)
			}
			poll.Until(t, 10*time.Second, "the last message arrives", func() bool { return sink.Last(49) })
			got := sink.Got()
			want := []uint32{40, 41, 42, 43, 44, 45, 46, 47, 48, 49}
			if tc.maxAge == 0 {
				// the first 16 queued, then the queue took nothing
				// until it drained: a hole from 16 to 44
				want = []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 44, 45, 46, 47, 48, 49}
			}
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}
}
