package media_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/media"
)

// busLog subscribes to a new bus and returns it with a function that
// returns what was published so far as "kind stream [takeover]".
func busLog(t *testing.T) (*events.Bus, func() []string) {
	b := events.New(nil)
	t.Cleanup(func() { b.Close() })
	sub := b.Subscribe("test", 1<<16)
	var got []string
	return b, func() []string {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 0)
			r, err := sub.Next(ctx)
			cancel()
			if err != nil {
				return got
			}
			switch e := r.Event.(type) {
			case events.StreamPublished:
				got = append(got, "published "+e.Stream+" "+e.Protocol)
			case events.StreamReconnected:
				got = append(got, fmt.Sprintf("reconnected %s %s takeover=%v", e.Stream, e.Protocol, e.Takeover))
			case events.StreamEnded:
				got = append(got, "ended "+e.Stream+": "+e.Reason)
			default:
				got = append(got, string(e.Kind()))
			}
		}
	}
}

// TestHubEvents: each change of a stream's life is published once, in
// order, where it happens.
func TestHubEvents(t *testing.T) {
	info := func(proto string) media.PublisherInfo {
		return media.PublisherInfo{Protocol: proto, Remote: "127.0.0.1:1"}
	}
	tests := []struct {
		name  string
		cfg   func(c *media.HubConfig)
		steps func(t *testing.T, h *media.Hub)
		want  []string
	}{
		{"publish and leave without grace", func(c *media.HubConfig) { c.ReconnectGrace = 0 }, func(t *testing.T, h *media.Hub) {
			mustPublish(t, h, "live/a", info("rtmp")).Close()
		}, []string{"published live/a rtmp", "ended live/a: publisher gone"}},
		{"back within the grace: reconnected, not published again", func(c *media.HubConfig) { c.ReconnectGrace = time.Hour }, func(t *testing.T, h *media.Hub) {
			mustPublish(t, h, "live/a", info("rtmp")).Close()
			mustPublish(t, h, "live/a", info("srt")).Close()
			mustPublish(t, h, "live/a", info("rtmp"))
			h.Close()
		}, []string{"published live/a rtmp", "reconnected live/a srt takeover=false", "reconnected live/a rtmp takeover=false",
			"ended live/a: " + media.ErrHubClosed.Error()}},
		{"takeover", func(c *media.HubConfig) { c.Takeover = true }, func(t *testing.T, h *media.Hub) {
			mustPublish(t, h, "live/a", info("rtmp"))
			mustPublish(t, h, "live/a", info("srt"))
		}, []string{"published live/a rtmp", "reconnected live/a srt takeover=true"}},
		{"a refused second publisher changes nothing", nil, func(t *testing.T, h *media.Hub) {
			mustPublish(t, h, "live/a", info("rtmp"))
			if _, err := h.Publish("live/a", info("srt")); err == nil {
				t.Fatal("second publisher accepted")
			}
		}, []string{"published live/a rtmp"}},
		{"two lives", func(c *media.HubConfig) { c.ReconnectGrace = 0 }, func(t *testing.T, h *media.Hub) {
			mustPublish(t, h, "live/a", info("rtmp")).Close()
			mustPublish(t, h, "live/a", info("srt")).Close()
		}, []string{"published live/a rtmp", "ended live/a: publisher gone", "published live/a srt", "ended live/a: publisher gone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus, got := busLog(t)
			cfg := media.DefaultHubConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			cfg.Events = bus
			h := media.NewHub(cfg, quietLog())
			defer h.Close()
			tc.steps(t, h)
			if g := got(); !reflect.DeepEqual(g, tc.want) {
				t.Errorf("events\n %q\nwant\n %q", g, tc.want)
			}
		})
	}
}

// TestHubEventsOrderUnderChurn: publishers of one key come and go from
// many goroutines while short graces run out; every subscriber sees each
// life as published, reconnected..., ended, never two lives interleaved.
func TestHubEventsOrderUnderChurn(t *testing.T) {
	bus, got := busLog(t)
	cfg := media.DefaultHubConfig()
	cfg.ReconnectGrace = time.Millisecond
	cfg.Events = bus
	h := media.NewHub(cfg, quietLog())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 300 {
				if p, err := h.Publish("live/churn", media.PublisherInfo{Protocol: "rtmp"}); err == nil {
					p.Close()
				}
			}
		})
	}
	wg.Wait()
	h.Close()
	live := false
	lives := 0
	for i, e := range got() {
		switch {
		case e == "published live/churn rtmp":
			if live {
				t.Fatalf("event %d: published while the previous life had not ended", i)
			}
			live = true
			lives++
		case e == "reconnected live/churn rtmp takeover=false":
			if !live {
				t.Fatalf("event %d: reconnected while not live", i)
			}
		case len(e) > 5 && e[:5] == "ended":
			if !live {
				t.Fatalf("event %d: ended twice", i)
			}
			live = false
		default:
			t.Fatalf("event %d: unexpected %q", i, e)
		}
	}
	if live {
		t.Errorf("the last life never ended")
	}
	t.Logf("%d lives", lives)
}

func mustPublish(t *testing.T, h *media.Hub, key string, info media.PublisherInfo) *media.Publisher {
	t.Helper()
	p, err := h.Publish(key, info)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
