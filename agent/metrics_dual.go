package agent

// Dual-path (redundancy = "dual") metrics: per stream and leg (0, 1), what
// the merge made of each leg's packets on a center, and the edge's two
// legs as backbone links (direction uplink-leg0 / uplink-leg1).

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/media/relay"
)

var (
	mDualLegUp      = desc("dual_leg_up", "1 while a leg of a dual-path stream merged here is connected.", "stream", "leg")
	mDualLegPackets = desc("dual_leg_packets_total", "RTP packets of a dual-path leg by what the merge made of them: first (delivered before the other leg), duplicate, late (after the window), recovered_by_other (this leg never delivered it, the other did).", "stream", "leg", "kind")
	mDualLost       = desc("dual_lost_packets_total", "RTP packets of a dual-path stream that neither leg delivered within the window.", "stream")
	mDualEmitted    = desc("dual_merged_packets_total", "RTP packets the merge of a dual-path stream emitted.", "stream")
)

var dualDescs = []*prometheus.Desc{mDualLegUp, mDualLegPackets, mDualLost, mDualEmitted}

func (c *agentCollector) collectDual(ch chan<- prometheus.Metric, link func(stream, peer, dir string, st relay.Status)) {
	cs := &c.a.cluster
	if cs.uplinks != nil {
		for _, d := range cs.uplinks.DualStreams() {
			for i, l := range d.Legs {
				link(d.Stream, l.Center, "uplink-leg"+strconv.Itoa(i), l.Link)
			}
		}
	}
	if cs.center == nil {
		return
	}
	for _, d := range cs.center.Duals() {
		ch <- prometheus.MustNewConstMetric(mDualLost, prometheus.CounterValue, float64(d.Merge.Lost), d.Stream)
		ch <- prometheus.MustNewConstMetric(mDualEmitted, prometheus.CounterValue, float64(d.Merge.Emitted), d.Stream)
		for i, l := range d.Merge.Legs {
			leg := strconv.Itoa(i)
			ch <- prometheus.MustNewConstMetric(mDualLegUp, prometheus.GaugeValue, b2f(l.Up), d.Stream, leg)
			for kind, v := range map[string]uint64{"first": l.First, "duplicate": l.Duplicates, "late": l.Late, "recovered_by_other": l.Recovered} {
				ch <- prometheus.MustNewConstMetric(mDualLegPackets, prometheus.CounterValue, float64(v), d.Stream, leg, kind)
			}
		}
	}
}
