package agent

// Flow metrics: source switches by reason (silence, primary back, and
// the health rule that fired: "health: framerate", "health: frozen").

import "github.com/prometheus/client_golang/prometheus"

var mFlowSwitches = desc("flow_switches_total", "Flow source switches, by reason (silence, primary back, or the health rule that fired).", "reason")

func (c *agentCollector) collectFlows(ch chan<- prometheus.Metric) {
	f := c.a.objects.flows
	if f == nil {
		return
	}
	for reason, n := range f.SwitchCounts() {
		ch <- prometheus.MustNewConstMetric(mFlowSwitches, prometheus.CounterValue, float64(n), reason)
	}
}
