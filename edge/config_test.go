package edge

import (
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
