package edge

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
)

// TestUplinksSubscribeThemselves: with Config.Events the uplinks follow
// the bus by themselves once they run, an event published between New
// and Run included: a failed center loses its uplink.
func TestUplinksSubscribeThemselves(t *testing.T) {
	bus := events.New(nil)
	defer bus.Close()
	u, err := New(Config{Events: bus}, media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), &fakeCluster{alive: []string{"tyo"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var cancelled atomic.Bool
	u.mu.Lock()
	u.links["live/x"] = &uplink{key: "live/x", center: "sin", exclude: map[string]time.Time{}, cancel: func() { cancelled.Store(true) }}
	u.mu.Unlock()
	bus.Publish(events.MemberFailed{Member: events.Member{Name: "sin"}}) // before Run
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	testmedia.Eventually(t, 5*time.Second, "the uplink to the failed center cancelled", cancelled.Load)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
