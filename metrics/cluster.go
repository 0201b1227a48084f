package metrics

// Cluster metrics: members by state, RTT to each member, and the backbone
// links this node drives (edge uplinks and center pulls; both are relay
// pushes/pulls over SRT). Labels: state, peer (a member name, bounded by
// the cluster), stream (bounded by max_publishers) and direction.

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/link"
)

var (
	mMembers     = desc("cluster_members", "Cluster members as this node sees them, by state.", "state")
	mMemberRTT   = desc("member_rtt_seconds", "Best RTT estimate to a member (network coordinates, else the last ping).", "peer")
	mLinkUp      = desc("link_connected", "1 while the backbone link is connected.", "stream", "peer", "direction")
	mLinkRTT     = desc("link_rtt_seconds", "SRT round-trip time of a backbone link.", "stream", "peer", "direction")
	mLinkLatency = desc("link_latency_seconds", "SRT latency setting of a backbone link.", "stream", "peer", "direction")
	mLinkLost    = desc("link_packets_lost_total", "Packets lost on a backbone link, all its sessions.", "stream", "peer", "direction")
	mLinkRetrans = desc("link_retransmits_total", "Packets retransmitted on a backbone link, all its sessions.", "stream", "peer", "direction")
	mLinkDrops   = desc("link_dropped_packets_total", "Packets dropped too late on a backbone link, all its sessions.", "stream", "peer", "direction")
	mLinkBytes   = desc("link_bytes_total", "Bytes moved by a backbone link since it started.", "stream", "peer", "direction")
	mLinkRecon   = desc("link_reconnects_total", "Times a backbone link reconnected.", "stream", "peer", "direction")
	mReplaced    = desc("uplink_replacements_total", "Edge uplinks moved make-before-break to a center with a clearly lower RTT (re-placement).")
	mHealthMoves = desc("uplink_health_moves_total", "Edge uplinks moved make-before-break away from a link that was connected but unhealthy (it dropped packets).")
)

var clusterDescs = []*prometheus.Desc{mMembers, mMemberRTT, mLinkUp, mLinkRTT, mLinkLatency, mLinkLost, mLinkRetrans, mLinkDrops, mLinkBytes, mLinkRecon, mReplaced, mHealthMoves}

func collectCluster(e emit, cl Cluster) {
	if cl.Members == nil {
		return
	}
	states := map[string]int{}
	for _, s := range []gossip.State{gossip.StateAlive, gossip.StateSuspect, gossip.StateDead, gossip.StateLeft} {
		states[s.String()] = 0
	}
	for _, m := range cl.Members.Members() {
		states[m.State.String()]++
		if !m.Local && m.RTTKnown {
			e.gauge(mMemberRTT, m.RTT.Seconds(), m.Name)
		}
	}
	for s, n := range states {
		e.gauge(mMembers, float64(n), s)
	}
	if cl.Uplinks != nil {
		e.counter(mReplaced, float64(cl.Uplinks.Replacements()))
		e.counter(mHealthMoves, float64(cl.Uplinks.HealthMoves()))
		for _, u := range cl.Uplinks.Streams() {
			collectLink(e, u.Stream, u.Center, "uplink", u.Relay)
		}
	}
	if cl.Center != nil {
		for _, p := range cl.Center.Pulls() {
			collectLink(e, p.Stream, p.From, "pull", p.Link)
		}
	}
	collectDual(e, cl)
}

func collectLink(e emit, stream, peer, dir string, st link.Status) {
	l := []string{stream, peer, dir}
	e.gauge(mLinkUp, b2f(st.State == link.StateRunning), l...)
	// totals across the link's sessions, so the counters never go back
	e.counter(mLinkBytes, float64(st.Total.Bytes), l...)
	e.counter(mLinkRecon, float64(st.Reconnects), l...)
	e.counter(mLinkLost, float64(st.Total.PacketsLost), l...)
	e.counter(mLinkRetrans, float64(st.Total.Retransmits), l...)
	e.counter(mLinkDrops, float64(st.Total.Drops), l...)
	if s := st.SRT; s != nil {
		e.gauge(mLinkRTT, s.RTTMs/1000, l...)
		e.gauge(mLinkLatency, float64(s.LatencyMs)/1000, l...)
	}
}
