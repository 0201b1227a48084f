package agent

import "time"

// This file wires the cluster: gossip membership, edge uplinks, center backbone, on-demand pulls, /v1/nodes, /v1/locate into the agent.

// clusterState is the agent's cluster state (see extensions.go).
type clusterState struct{}

// newCluster builds the cluster components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newCluster(cfg *Config) error { return nil }

// reloadCluster applies a valid new config; an error refuses the reload.
func (a *Agent) reloadCluster(old, next *Config) error { return nil }

// routesCluster registers the cluster API endpoints on s.mux.
func (s *apiServer) routesCluster() {}

// playWait is how long a player may wait for a stream that is not live on
// this node (a center pulls it on demand meanwhile).
func (a *Agent) playWait(cfg *Config) time.Duration { return 0 }
