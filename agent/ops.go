package agent

// This file wires operations: Prometheus metrics, webhooks, QoS over netlink into the agent.

// opsState is the agent's ops state (see extensions.go).
type opsState struct{}

// newOps builds the ops components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newOps(cfg *Config) error { return nil }

// reloadOps applies a valid new config; an error refuses the reload.
func (a *Agent) reloadOps(old, next *Config) error { return nil }

// routesOps registers the ops API endpoints on s.mux.
func (s *apiServer) routesOps()       {}
func qosInterface(cfg *Config) string { return "" }
