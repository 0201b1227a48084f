package listeners

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
)

// testSet is a Set whose started servers run until the test ends.
func testSet(t *testing.T) *Set {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	hub := media.NewHub(media.DefaultHubConfig(), log)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var closers []func() error
	s := New(Deps{Hub: hub, Log: log, Authorize: func(media.Access) error { return nil },
		Routes: func() http.Handler { return http.NotFoundHandler() },
		Start: func(run func(context.Context) error, close func() error) {
			mu.Lock()
			closers = append(closers, close)
			mu.Unlock()
			wg.Go(func() { run(ctx) })
		}})
	t.Cleanup(func() {
		cancel()
		mu.Lock()
		for _, c := range closers {
			c()
		}
		mu.Unlock()
		wg.Wait()
		s.Close()
		hub.Close()
	})
	return s
}

func rtmpOn(addr string) *config.Config {
	c := config.Default()
	c.RTMP.Listen = addr
	return c
}

func accepts(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestPrepareMovesRTMP: a moved listener is bound at prepare and in force
// only at commit, the old one closes then; a refusal (address in use) or
// an abort leaves the old one where it was and frees the new address.
func TestPrepareMovesRTMP(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		to   func(t *testing.T) string // the new rtmp.listen
		err  string                    // the refusal, "" when prepared
		act  string                    // "commit" or "abort" when prepared
	}{
		{name: "commit moves it", to: freeAddr, act: "commit"},
		{name: "commit turns it off", to: func(*testing.T) string { return "" }, act: "commit"},
		{name: "abort keeps it", to: freeAddr, act: "abort"},
		{name: "address in use refuses", to: func(*testing.T) string { return busy.Addr().String() }, err: "rtmp.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSet(t)
			if err := s.Open(RTMP, rtmpOn("127.0.0.1:0")); err != nil {
				t.Fatal(err)
			}
			from, to := s.Addr(RTMP), tt.to(t)
			commit, abort, err := s.Prepare(rtmpOn(to), []string{"srt_stream", RTMP})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "address already in use") {
					t.Fatalf("Prepare = %v, want %s: address already in use", err, tt.err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got := s.Addr(RTMP); got != from {
				t.Errorf("after Prepare the listener is at %q, want still %q", got, from)
			}
			switch tt.act {
			case "commit":
				commit()
				if got := s.Addr(RTMP); got != to {
					t.Errorf("after commit the listener is at %q, want %q", got, to)
				}
				if to != "" && !accepts(to) {
					t.Errorf("%s does not accept after commit", to)
				}
				if accepts(from) {
					t.Errorf("the old address %s still accepts after commit", from)
				}
				return
			case "abort":
				abort()
				if ln, err := net.Listen("tcp", to); err != nil {
					t.Errorf("%s still bound after abort: %v", to, err)
				} else {
					ln.Close()
				}
			}
			if got := s.Addr(RTMP); got != from || !accepts(from) {
				t.Errorf("listener at %q (accepting %v), want still at %q", got, accepts(from), from)
			}
		})
	}
}
