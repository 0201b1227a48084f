package center

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
)

func TestConfigOf(t *testing.T) {
	cases := []struct {
		name     string
		role     string
		backbone string
		cluster  bool
		listen   string
		playWait time.Duration
	}{
		{"center: the default backbone listener", config.RoleCenter, "", true, config.DefaultBackboneListen, PlayWait},
		{"center: its own backbone listener", config.RoleCenter, "127.0.0.1:9999", true, "127.0.0.1:9999", PlayWait},
		{"standalone: none unless asked", config.RoleStandalone, "", true, "", PlayWait},
		{"standalone with backbone_listen", config.RoleStandalone, "127.0.0.1:9999", true, "127.0.0.1:9999", PlayWait},
		{"outside a cluster: players do not wait", config.RoleStandalone, "", false, "", 0},
		{"edge: players do not wait", config.RoleEdge, "", true, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Node.Role, cfg.Cluster.BackboneListen, cfg.Cluster.Enabled = c.role, c.backbone, c.cluster
			cc := ConfigOf(cfg, "backbone-key-0123", nil)
			if c.role != config.RoleEdge && (cc.Listen != c.listen || cc.Passphrase != "backbone-key-0123" || cc.PlayWait != PlayWait) {
				t.Errorf("ConfigOf: listen %q, key %q, play wait %v; want %q, the key, %v", cc.Listen, cc.Passphrase, cc.PlayWait, c.listen, PlayWait)
			}
			if got := PlayWaitOf(cfg); got != c.playWait {
				t.Errorf("PlayWaitOf = %v, want %v", got, c.playWait)
			}
		})
	}
}

// TestCenterSubscribesItself: with Config.Events the center follows the
// bus by itself once it runs, a stream published between New and Run
// included.
func TestCenterSubscribesItself(t *testing.T) {
	bus := events.New(nil)
	defer bus.Close()
	hub := media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
	defer hub.Close()
	dir := &fakeDirectory{}
	c, err := New(Config{Events: bus}, hub, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	bus.Publish(events.StreamPublished{Stream: "live/a", Protocol: "rtmp"}) // before Run
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	bus.Publish(events.StreamEnded{Stream: "live/a"})
	want := []string{"publish live/a", "unpublish live/a"}
	testmedia.Eventually(t, 5*time.Second, "the directory to follow the bus", func() bool {
		dir.mu.Lock()
		defer dir.mu.Unlock()
		return slices.Equal(dir.calls, want)
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
