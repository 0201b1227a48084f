package agent

// Cluster metrics: members by state, RTT to each member, and the backbone
// links this node drives (edge uplinks and center pulls; both are relay
// pushes/pulls over SRT). Labels: state, peer (a member name, bounded by
// the cluster), stream (bounded by max_publishers) and direction.

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/relay"
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

func (c *agentCollector) describeCluster(ch chan<- *prometheus.Desc) {
	for _, d := range clusterDescs {
		ch <- d
	}
}

func (c *agentCollector) collectCluster(ch chan<- prometheus.Metric) {
	cs := &c.a.cluster
	if cs.gossip == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	states := map[string]int{}
	for _, s := range []gossip.State{gossip.StateAlive, gossip.StateSuspect, gossip.StateDead, gossip.StateLeft} {
		states[s.String()] = 0
	}
	for _, m := range cs.gossip.Members() {
		states[m.State.String()]++
		if !m.Local && m.RTTKnown {
			gauge(mMemberRTT, m.RTT.Seconds(), m.Name)
		}
	}
	for s, n := range states {
		gauge(mMembers, float64(n), s)
	}
	link := func(stream, peer, dir string, st relay.Status) {
		l := []string{stream, peer, dir}
		gauge(mLinkUp, b2f(st.State == relay.StateRunning), l...)
		// totals across the link's sessions, so the counters never go back
		counter(mLinkBytes, float64(st.Total.Bytes), l...)
		counter(mLinkRecon, float64(st.Reconnects), l...)
		counter(mLinkLost, float64(st.Total.PacketsLost), l...)
		counter(mLinkRetrans, float64(st.Total.Retransmits), l...)
		counter(mLinkDrops, float64(st.Total.Drops), l...)
		if s := st.SRT; s != nil {
			gauge(mLinkRTT, s.RTTMs/1000, l...)
			gauge(mLinkLatency, float64(s.LatencyMs)/1000, l...)
		}
	}
	if cs.uplinks != nil {
		counter(mReplaced, float64(cs.uplinks.Replacements()))
		counter(mHealthMoves, float64(cs.uplinks.HealthMoves()))
		for _, u := range cs.uplinks.Streams() {
			link(u.Stream, u.Center, "uplink", u.Relay)
		}
	}
	if cs.center != nil {
		for _, p := range cs.center.Pulls() {
			link(p.Stream, p.From, "pull", p.Link)
		}
	}
}
