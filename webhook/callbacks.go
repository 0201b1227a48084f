package webhook

// Callbacks sends events to URLs that objects name (a task's callback):
// one Sender per URL, so the events of a URL are delivered in order.

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
)

// CallbackConfig is what every callback sender of a Callbacks is built
// with, read when a URL's sender is first made.
type CallbackConfig struct {
	Secret []byte // nil leaves requests unsigned
	Node   string
	// Client makes the requests: a callback is a user's URL, so it goes
	// through the node's outbound policy.
	Client *http.Client
}

// Callbacks keeps one Sender per callback URL until Close.
type Callbacks struct {
	log    *slog.Logger
	prefix string
	config func() CallbackConfig

	mu      sync.Mutex
	senders map[string]*Sender
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewCallbacks names each event prefix+name (e.g. "task.started") and
// builds a URL's sender with config() when the URL is first used.
func NewCallbacks(prefix string, config func() CallbackConfig, log *slog.Logger) *Callbacks {
	ctx, cancel := context.WithCancel(context.Background())
	return &Callbacks{log: log, prefix: prefix, config: config, senders: map[string]*Sender{}, ctx: ctx, cancel: cancel}
}

// CallbackSender sends the events of one callback URL.
type CallbackSender struct {
	s      *Sender
	prefix string
}

// Notify queues event (named with the Callbacks' prefix); it never
// blocks.
func (c CallbackSender) Notify(event string, payload any) { c.s.Send(c.prefix+event, payload) }

// For returns the sender of url, starting it on first use.
func (c *Callbacks) For(url string) CallbackSender {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.senders[url]; s != nil {
		return CallbackSender{s, c.prefix}
	}
	cfg := c.config()
	s := New(Config{URL: url, Secret: cfg.Secret, Node: cfg.Node, Client: cfg.Client}, c.log)
	c.senders[url] = s
	c.wg.Go(func() { s.Run(c.ctx) })
	return CallbackSender{s, c.prefix}
}

// Close flushes (bounded by the senders' FlushTimeout) and stops the
// senders.
func (c *Callbacks) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.senders {
		s.Close()
	}
	return nil
}
