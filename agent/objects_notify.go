package agent

import (
	"context"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/task"
	"github.com/relaymesh/relaymesh/webhook"
)

// taskHooks keeps one webhook.Sender per task callback URL, so the events
// of a URL are delivered in order, signed with the node's webhook secret
// (webhooks.secret_file; unsigned without one). Events are named
// "task.started", "task.item-changed", "task.stopped", "task.failed" and
// "task.finished"; the data is a task.Event.
type taskHooks struct {
	a       *Agent
	mu      sync.Mutex
	senders map[string]*webhook.Sender
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type hookNotifier struct{ s *webhook.Sender }

func (h hookNotifier) Notify(event string, payload any) { h.s.Send("task."+event, payload) }

func newTaskHooks(a *Agent) *taskHooks {
	ctx, cancel := context.WithCancel(context.Background())
	return &taskHooks{a: a, senders: map[string]*webhook.Sender{}, ctx: ctx, cancel: cancel}
}

func (h *taskHooks) notifier(callback string) task.Notifier {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.senders[callback]; s != nil {
		return hookNotifier{s}
	}
	cfg := h.a.config()
	var secret []byte
	if f := cfg.Webhooks.SecretFile; f != "" {
		var err error
		if secret, err = config.LoadWebhookSecret(f); err != nil {
			h.a.log.Warn("task webhooks go unsigned: webhooks.secret_file unreadable", "err", err)
		}
	}
	// the callback is a user's URL: it goes through the outbound policy
	client := netutil.PolicyHTTPClient(h.a.fetchPolicy, 5*time.Second)
	s := webhook.New(webhook.Config{URL: callback, Secret: secret, Node: cfg.Node.ResolveName(), Client: client}, h.a.log)
	h.senders[callback] = s
	h.wg.Go(func() { s.Run(h.ctx) })
	return hookNotifier{s}
}

// close flushes (bounded by the sender's FlushTimeout) and stops the senders.
func (h *taskHooks) close() error {
	h.cancel()
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.senders {
		s.Close()
	}
	return nil
}
