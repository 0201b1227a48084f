package edge

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/config"
)

func TestConfigOf(t *testing.T) {
	cfg := config.Default()
	cfg.Cluster.DSCP = 46
	cfg.Routes = []config.RouteConfig{
		{Pattern: "live/*", Sites: []string{"sin"}, Redundancy: "dual", RedundancyWindow: config.Duration(300 * time.Millisecond)},
		{Pattern: "vod/*", Redundancy: "single"},
		{Pattern: "*/*"},
	}
	c := ConfigOf(cfg, "backbone-key-0123", nil)
	want := []Redundancy{{Pattern: "live/*", Dual: true, Window: 300 * time.Millisecond}, {Pattern: "vod/*"}, {Pattern: "*/*"}}
	if !reflect.DeepEqual(c.Redundancy, want) {
		t.Errorf("Redundancy = %+v, want %+v", c.Redundancy, want)
	}
	if len(c.Routes) != 3 || c.Routes[0].Pattern != "live/*" || c.Routes[0].Sites[0] != "sin" {
		t.Errorf("Routes = %+v, want the three [[route]] tables in order", c.Routes)
	}
	if c.Passphrase != "backbone-key-0123" || c.DSCP != cfg.Cluster.DSCPMark() || c.IdleTimeout != config.BackboneIdleTimeout {
		t.Errorf("backbone settings %q, DSCP %d, idle %v; want the key, %d, %v", c.Passphrase, c.DSCP, c.IdleTimeout, cfg.Cluster.DSCPMark(), config.BackboneIdleTimeout)
	}
	if got, want := c.Latency(50*time.Millisecond), cfg.Cluster.Latency.For(50*time.Millisecond); got != want {
		t.Errorf("Latency(50ms) = %v, want %v", got, want)
	}
}

// TestReplaceConfig: [cluster.replace] unset is the edge's default
// re-placement; set, every key reaches the uplinks as written (0 included).
func TestReplaceConfig(t *testing.T) {
	load := func(text string) *config.Config {
		t.Helper()
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if got, want := ConfigOf(load("version = 1\n"), "", nil).Replace, DefaultReplacement(); got != want {
		t.Errorf("[cluster.replace] unset: %+v, want the default %+v", got, want)
	}
	if d := DefaultReplacement(); d.Margin != 20*time.Millisecond || d.Ratio != 0.7 || d.Hold != 3*time.Second || d.Cooldown != 30*time.Second || d.Every != time.Second || d.Off {
		t.Errorf("DefaultReplacement() = %+v, want 20ms, 0.7, 3s hold, 30s cooldown, every 1s, on", d)
	}
	cfg := load("[node]\nrole = \"edge\"\n[cluster.replace]\nenabled = false\nmargin = \"0s\"\nratio = 0.25\nhold = \"0s\"\ncooldown = \"2m\"\n")
	want := Replacement{Off: true, Ratio: 0.25, Every: time.Second, Cooldown: 2 * time.Minute}
	if got := ConfigOf(cfg, "", nil).Replace; got != want {
		t.Errorf("[cluster.replace] set: %+v, want %+v", got, want)
	}
}
