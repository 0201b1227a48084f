package config

import (
	"fmt"

	"github.com/relaymesh/relaymesh/webhook"
)

// Notifier is [webhooks] as the node's webhook sender takes it, with its
// HMAC key read.
func (c *Config) Notifier() (webhook.NotifierConfig, error) {
	w := c.Webhooks
	hc := webhook.NotifierConfig{URL: w.URL, Node: c.Node.ResolveName(), Events: w.Events}
	if w.URL == "" || w.SecretFile == "" {
		return hc, nil
	}
	secret, err := LoadWebhookSecret(w.SecretFile)
	if err != nil {
		return hc, fmt.Errorf("webhooks.secret_file: %w", err)
	}
	hc.Secret = secret
	return hc, nil
}
