package agent

// ObjectsConfig is [objects]: limits for flows, relays and tasks.
type ObjectsConfig struct{}

// FlowConfig is one [[flow]].
type FlowConfig struct{}

// RelayConfig is one [[relay]].
type RelayConfig struct{}

// TaskConfig is one [[task]].
type TaskConfig struct{}

func (c *Config) validateObjects(ps *cfgProblems) {}
