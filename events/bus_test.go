package events

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

func pub(key string) Event { return StreamPublished{Stream: key} }

// drain takes what is queued on s without waiting.
func drain(t *testing.T, s *Subscription) []Record {
	t.Helper()
	var out []Record
	for {
		r, ok, err := s.take()
		if err != nil || !ok {
			return out
		}
		out = append(out, r)
	}
}

// describe is a record as the tests compare it: "seq kind detail".
func describe(rs []Record) []string {
	var out []string
	for _, r := range rs {
		switch e := r.Event.(type) {
		case StreamPublished:
			out = append(out, fmt.Sprintf("%d %s", r.Seq, e.Stream))
		case Missed:
			out = append(out, fmt.Sprintf("%d missed %d (%d..%d)", r.Seq, e.N, e.First, e.Last))
		default:
			out = append(out, fmt.Sprintf("%d %s", r.Seq, e.Kind()))
		}
	}
	return out
}

func TestBus(t *testing.T) {
	tests := []struct {
		name string
		size int
		// run publishes and reads; it returns what the subscriber got
		run  func(b *Bus, s *Subscription) []Record
		want []string
		// missed is the subscriber's Missed counter at the end
		missed uint64
	}{
		{"in order, one sequence", 8, func(b *Bus, s *Subscription) []Record {
			b.Publish(pub("a/1"))
			b.Publish(StreamEnded{Stream: "a/1"})
			b.Publish(pub("a/2"))
			return drain(t, s)
		}, []string{"1 a/1", "2 stream.ended", "3 a/2"}, 0},
		{"slow subscriber: a Missed record stands where events were lost", 3, func(b *Bus, s *Subscription) []Record {
			for i := 1; i <= 6; i++ { // nobody reads: Publish must not block
				b.Publish(pub(fmt.Sprintf("a/%d", i)))
			}
			got := drain(t, s) // 1..3 queued, 4..6 lost; the gap is told on the empty queue
			b.Publish(pub("a/7"))
			return append(got, drain(t, s)...)
		}, []string{"1 a/1", "2 a/2", "3 a/3", "6 missed 3 (4..6)", "7 a/7"}, 3},
		{"lost events after reading part of the queue", 4, func(b *Bus, s *Subscription) []Record {
			for i := 1; i <= 6; i++ {
				b.Publish(pub(fmt.Sprintf("a/%d", i)))
			}
			r1, _, _ := s.take()
			r2, _, _ := s.take()
			b.Publish(pub("a/7")) // two slots free: the gap record and a/7
			b.Publish(pub("a/8")) // full again: lost
			return append([]Record{r1, r2}, drain(t, s)...)
		}, []string{"1 a/1", "2 a/2", "3 a/3", "4 a/4", "6 missed 2 (5..6)", "7 a/7", "8 missed 1 (8..8)"}, 3},
		{"bus closed: queued records still delivered, then ErrClosed", 8, func(b *Bus, s *Subscription) []Record {
			b.Publish(pub("a/1"))
			b.Close()
			if n := b.Publish(pub("a/2")); n != 0 {
				t.Errorf("Publish after Close = seq %d, want 0", n)
			}
			got := drain(t, s)
			if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after the bus closed = %v, want ErrClosed", err)
			}
			return got
		}, []string{"1 a/1"}, 0},
		{"subscription closed: ErrClosed at once, nothing more queued", 8, func(b *Bus, s *Subscription) []Record {
			b.Publish(pub("a/1"))
			s.Close()
			s.Close() // idempotent
			b.Publish(pub("a/2"))
			if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close = %v, want ErrClosed", err)
			}
			if n := len(b.Stats().Subscribers); n != 0 {
				t.Errorf("%d subscribers after Close, want 0", n)
			}
			return nil
		}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(nil)
			defer b.Close()
			s := b.Subscribe("test", tc.size)
			got := describe(tc.run(b, s))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
			if m := s.missed; m != tc.missed {
				t.Errorf("missed = %d, want %d", m, tc.missed)
			}
		})
	}
}

// TestBusConcurrentOrder: publishers on many goroutines, subscribers
// reading at their own pace: every subscriber sees the same sequence,
// strictly increasing, and each publisher's events in its order.
func TestBusConcurrentOrder(t *testing.T) {
	const publishers, each = 4, 500
	b := New(nil)
	var subs []*Subscription
	for i := range 3 {
		subs = append(subs, b.Subscribe(fmt.Sprintf("sub%d", i), publishers*each))
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				b.Publish(StreamPublished{Stream: fmt.Sprintf("p%d/%d", p, i)})
			}
		})
	}
	results := make([][]Record, len(subs))
	var rg sync.WaitGroup
	for i, s := range subs {
		rg.Go(func() {
			s.Run(context.Background(), func(r Record) { results[i] = append(results[i], r) })
		})
	}
	wg.Wait()
	b.Close()
	rg.Wait()
	for i, rs := range results {
		if len(rs) != publishers*each {
			t.Fatalf("sub%d got %d records, want %d", i, len(rs), publishers*each)
		}
		next := make([]int, publishers)
		for j, r := range rs {
			if r.Seq != uint64(j+1) {
				t.Fatalf("sub%d record %d has seq %d, want %d", i, j, r.Seq, j+1)
			}
			var p, n int
			fmt.Sscanf(r.Event.(StreamPublished).Stream, "p%d/%d", &p, &n)
			if n != next[p] {
				t.Fatalf("sub%d: publisher %d's event %d arrived when %d was due", i, p, n, next[p])
			}
			next[p]++
		}
		if !reflect.DeepEqual(describe(rs), describe(results[0])) {
			t.Errorf("sub%d saw another sequence than sub0", i)
		}
	}
}

// TestSubscriptionRun: Run returns on ctx after delivering what was
// queued, and on Close; its goroutines do not outlive it.
func TestSubscriptionRun(t *testing.T) {
	before := runtime.NumGoroutine()
	b := New(nil)
	s1, s2 := b.Subscribe("ctx", 8), b.Subscribe("close", 8)
	var mu sync.Mutex
	var got1 []string
	hold := make(chan struct{}) // the first record's fn waits on it
	ctx, cancel := context.WithCancel(context.Background())
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() {
		done1 <- s1.Run(ctx, func(r Record) {
			mu.Lock()
			got1 = append(got1, describe([]Record{r})...)
			mu.Unlock()
			if r.Seq == 1 {
				<-hold
			}
		})
	}()
	go func() { done2 <- s2.Run(context.Background(), func(Record) {}) }()
	b.Publish(pub("a/1"))
	poll.Until(t, 5*time.Second, "a/1 delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got1) == 1
	})
	b.Publish(pub("a/2")) // queued while the reader is busy, then ctx ends
	b.Publish(pub("a/3"))
	cancel()
	close(hold)
	if err := <-done1; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if want := []string{"1 a/1", "2 a/2", "3 a/3"}; !reflect.DeepEqual(got1, want) {
		t.Errorf("Run delivered %q, want %q (queued records delivered when ctx ends)", got1, want)
	}
	s2.Close()
	if err := <-done2; err != nil {
		t.Errorf("Run after Close = %v, want nil", err)
	}
	b.Close()
	b.Close()
	poll.Until(t, 5*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= before })
}

func TestNilBus(t *testing.T) {
	var b *Bus
	if n := b.Publish(pub("a/1")); n != 0 {
		t.Errorf("nil bus Publish = %d, want 0", n)
	}
	s := b.Subscribe("x", 0)
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Next on a nil bus's subscription = %v, want ErrClosed", err)
	}
	s.Close()
	b.Close()
}

// BenchmarkPublish: the cost of one Publish with n subscribers that keep
// up (each drains on its own goroutine).
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			bus := New(nil)
			var wg sync.WaitGroup
			for i := range n {
				s := bus.Subscribe(fmt.Sprint(i), 1<<16)
				wg.Go(func() { s.Run(context.Background(), func(Record) {}) })
			}
			e := StreamPublished{Stream: "live/bench"}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				bus.Publish(e)
			}
			b.StopTimer()
			bus.Close()
			wg.Wait()
		})
	}
}
