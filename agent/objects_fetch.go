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
	var ports []uint16
	for _, which := range []string{"api", "rtmp", "http", "srt"} {
		if _, p, err := net.SplitHostPort(a.listenAddr(which)); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				ports = append(ports, uint16(n))
			}
		}
	}
	return a.config().Objects.fetchPolicy(ports)
}
