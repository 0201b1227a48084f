package center

import (
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
)

// ConfigOf is the center's part of cfg: the backbone listener (on a
// center, or a standalone node that sets cluster.backbone_listen), its
// latency, DSCP mark and timeouts, with the backbone passphrase pass; the
// center follows bus.
func ConfigOf(cfg *config.Config, pass string, bus *events.Bus) Config {
	cc := cfg.Cluster
	listen := ""
	if cfg.Node.Role == config.RoleCenter || cc.BackboneListen != "" {
		listen = cc.BackboneAddr()
	}
	return Config{
		Listen: listen, Passphrase: pass, DSCP: cc.DSCPMark(),
		Latency:     func(rtt time.Duration) time.Duration { return cc.Latency.For(rtt) },
		IdleTimeout: config.BackboneIdleTimeout, ReadTimeout: cfg.Limits.ReadTimeout.Duration(),
		PlayWait: PlayWait, Events: bus,
	}
}

// PlayWaitOf is how long cfg's players wait for a stream that is not
// live on the node: PlayWait on a node in a cluster that runs the center
// role (it pulls the stream on demand meanwhile), else 0.
func PlayWaitOf(cfg *config.Config) time.Duration {
	if cfg.Cluster.Enabled && cfg.Node.RunsCenter() {
		return PlayWait
	}
	return 0
}
