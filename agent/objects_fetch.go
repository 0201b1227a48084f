package agent

// This file gives the objects (flows, relays, tasks and task callbacks)
// the node's outbound fetch policy ([objects] fetch_allow / fetch_deny),
// read from the config in force at each use, so a reload applies it to the
// next connection.

import "github.com/relaymesh/relaymesh/netutil"

// fetchPolicy is the policy in force: the config's CIDRs and this node's
// own listener ports (config.Config.FetchPolicy).
func (a *Agent) fetchPolicy() *netutil.FetchPolicy {
	return a.config().FetchPolicy(a.listenAddr("api"), a.listenAddr("rtmp"), a.listenAddr("http"), a.listenAddr("srt"))
}
