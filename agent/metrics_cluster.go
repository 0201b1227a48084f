package agent

import "github.com/prometheus/client_golang/prometheus"

// Cluster metrics (members by state, backbone links) are added here once
// the cluster part stores its *gossip.Cluster in a.ext.cluster.

func (c *agentCollector) describeCluster(ch chan<- *prometheus.Desc) {}

func (c *agentCollector) collectCluster(ch chan<- prometheus.Metric) {}
