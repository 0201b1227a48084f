package agent

// ClusterConfig is [cluster].
type ClusterConfig struct{}

// RouteConfig is one [[route]].
type RouteConfig struct{}

// LocationConfig is one [[location]].
type LocationConfig struct{}

func (c *Config) validateCluster(ps *cfgProblems) {}
