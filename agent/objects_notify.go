package agent

import (
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/task"
	"github.com/relaymesh/relaymesh/webhook"
)

// newTaskHooks keeps one webhook sender per task callback URL, signed
// with the node's webhook secret (webhooks.secret_file; unsigned without
// one). Events are named "task.started", "task.item-changed",
// "task.stopped", "task.failed" and "task.finished"; the data is a
// task.Event.
func newTaskHooks(a *Agent) *webhook.Callbacks {
	return webhook.NewCallbacks("task.", func() webhook.CallbackConfig {
		cfg := a.config()
		var secret []byte
		if f := cfg.Webhooks.SecretFile; f != "" {
			var err error
			if secret, err = config.LoadWebhookSecret(f); err != nil {
				a.log.Warn("task webhooks go unsigned: webhooks.secret_file unreadable", "err", err)
			}
		}
		// the callback is a user's URL: it goes through the outbound policy
		client := netutil.PolicyHTTPClient(a.fetchPolicy, 5*time.Second)
		return webhook.CallbackConfig{Secret: secret, Node: cfg.Node.ResolveName(), Client: client}
	}, a.log)
}

// taskNotifier is the webhook sender of a task's callback URL.
func (a *Agent) taskNotifier(callback string) task.Notifier { return a.objects.hooks.For(callback) }
