package agent

// This file gives the objects (flows, relays, tasks and task callbacks)
// the node's outbound fetch policy ([objects] fetch_allow / fetch_deny),
// read from the config in force at each use, so a reload applies it to the
// next connection.

import (
	"net"
	"strconv"

	"github.com/relaymesh/relaymesh/netutil"
)

// fetchPolicy is the policy in force: the config's CIDRs and this node's
// own listener ports.
func (a *Agent) fetchPolicy() *netutil.FetchPolicy {
	cfg := a.config()
	addrs := []string{a.listenAddr("api"), a.listenAddr("rtmp"), a.listenAddr("http"), a.listenAddr("srt")}
	if cfg.Cluster.Enabled {
		addrs = append(addrs, cfg.Cluster.GossipBind(), cfg.Cluster.BackboneListen)
	}
	var ports []uint16
	for _, addr := range addrs {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n > 0 {
				ports = append(ports, uint16(n))
			}
		}
	}
	return cfg.Objects.FetchPolicy(ports)
}
