package agent

// QoSConfig is [qos].
type QoSConfig struct{}

// WebhooksConfig is [webhooks].
type WebhooksConfig struct{}

func (c *Config) validateOps(ps *cfgProblems) {}
