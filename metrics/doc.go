// Package metrics is the node's Prometheus collector in the collector
// style: nothing is mirrored in globals; every value is read from its
// owner (the hub, the listeners, the kernel's tc counters, the webhook
// sender, gossip, the edge and center roles, the event bus) when /metrics
// is scraped. The agent implements [Source] and registers [New] and
// [NewEvents]; it only wires.
//
// Labels stay bounded: stream keys (bounded by limits.max_publishers),
// tracks, listener names, SRT roles, QoS classes, member names (bounded by
// the cluster), event kinds and the agent's own bus subscribers; never a
// connection.
package metrics
