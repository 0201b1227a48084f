package edge

import (
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
)

// ConfigOf is the edge's part of cfg: the [[route]] tables (center
// choice and redundancy) and the backbone's latency, DSCP mark and idle
// timeout, with the backbone passphrase pass; the uplinks follow bus and
// report their moves on it.
func ConfigOf(cfg *config.Config, pass string, bus *events.Bus) Config {
	cc := cfg.Cluster
	return Config{
		Routes: config.RoutesOf(cfg.Routes), Passphrase: pass, DSCP: cc.DSCPMark(), IdleTimeout: config.BackboneIdleTimeout,
		Latency:    func(rtt time.Duration) time.Duration { return cc.Latency.For(rtt) },
		Events:     bus,
		Replace:    ReplacementOf(cc.Replace), // live: the next check uses it
		Redundancy: RedundancyOf(cfg.Routes),
	}
}

// ReplacementOf is [cluster.replace] for the uplinks, checked every second.
func ReplacementOf(r config.ReplaceConfig) Replacement {
	return Replacement{Off: !r.Enabled, Margin: r.Margin.Duration(), Ratio: r.Ratio, Hold: r.Hold.Duration(),
		Every: time.Second, Cooldown: r.Cooldown.Duration()}
}

// RedundancyOf is the redundancy of the [[route]] tables rs.
func RedundancyOf(rs []config.RouteConfig) []Redundancy {
	out := make([]Redundancy, 0, len(rs))
	for _, r := range rs {
		out = append(out, Redundancy{Pattern: r.Pattern, Dual: r.Redundancy == "dual", Window: r.RedundancyWindow.Duration()})
	}
	return out
}
