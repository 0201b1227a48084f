// Package webhook delivers signed JSON events to one HTTP endpoint, in
// order, with bounded retries and a bounded queue. The agent uses it for
// node events (stream published, member joined, …) and the tasks part for
// task state changes.
//
// # Use
//
//	s := webhook.New(webhook.Config{URL: u, Secret: key, Node: "fra-1"}, log)
//	go s.Run(ctx)            // the one delivery goroutine
//	s.Send("stream.published", map[string]any{"stream": "live/cam1"})
//	...
//	s.Close()
//
// Send never blocks: it appends to a queue of Config.QueueSize events and
// returns; when the queue is full the oldest queued event is dropped and
// counted (Stats().Dropped). One goroutine (Run) delivers the events one at
// a time in the order they were sent, so a receiver sees them in order. A
// failed delivery is retried with exponential backoff (InitialBackoff,
// doubled per attempt up to MaxBackoff, ±20% jitter) for at most
// MaxAttempts attempts, then dropped and counted (Stats().Failed); later
// events wait behind it, which is what keeps the order. Retried: network
// errors, timeouts, HTTP 408, 429 and 5xx. Any other status outside
// 200..299 fails the event at once (the receiver refused it). When Run's
// ctx ends, Run makes one last attempt at each queued event for at most
// FlushTimeout, then returns. Close stops Run and any delivery at once and
// makes Send a no-op; it is idempotent.
//
// # Request
//
//	POST <URL>
//	Content-Type: application/json
//	User-Agent: relaymesh-webhook/1
//	X-Relaymesh-Event: stream.published
//	X-Relaymesh-Delivery: 3f0c9a…            (32 hex digits; the same on every retry)
//	X-Relaymesh-Timestamp: 1767225600        (unix seconds of this attempt)
//	X-Relaymesh-Signature: sha256=<hex>      (only when a secret is set)
//
//	{"id":"3f0c9a…","event":"stream.published","time":"2026-01-01T00:00:00.123Z","node":"fra-1","data":{…}}
//
// time is when Send was called (RFC 3339, UTC); id equals the delivery
// header.
//
// # Signature
//
// The signature is HMAC-SHA256, keyed with the secret, over the timestamp
// header's value, a '.', and the raw body bytes:
//
//	hex(HMAC-SHA256(secret, timestamp + "." + body))
//
// A receiver recomputes it over the body exactly as received, compares in
// constant time, and refuses a timestamp more than MaxSkew away from its
// clock: a captured request cannot be replayed later, and because the
// timestamp is signed it cannot be refreshed. [Verify] does all of this.
// Receivers that must also refuse a replay inside the window keep the
// delivery ids they have seen for MaxSkew.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/netutil"
)

// Header names.
const (
	HeaderEvent     = "X-Relaymesh-Event"
	HeaderDelivery  = "X-Relaymesh-Delivery"
	HeaderTimestamp = "X-Relaymesh-Timestamp"
	HeaderSignature = "X-Relaymesh-Signature"
)

// MaxSkew is how far a request's timestamp may be from the receiver's
// clock for Verify to accept it.
const MaxSkew = 5 * time.Minute

// Config says where and how to deliver. Zero values take the defaults
// noted.
type Config struct {
	URL            string        // http or https endpoint
	Secret         []byte        // HMAC key; nil sends unsigned requests
	Node           string        // the "node" field of every body
	QueueSize      int           // events waiting at most; 256
	MaxAttempts    int           // attempts per event; 5
	InitialBackoff time.Duration // wait after the first failure; 500ms
	MaxBackoff     time.Duration // longest wait between attempts; 30s
	Timeout        time.Duration // per attempt; 5s
	FlushTimeout   time.Duration // last delivery round when Run's ctx ends; 2s
	Client         *http.Client  // nil: a client with Timeout
}

func (c *Config) defaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 256
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.MaxBackoff < c.InitialBackoff {
		c.MaxBackoff = c.InitialBackoff
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 2 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
}

// ValidateURL checks that u is an absolute http or https URL.
func ValidateURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", u, err)
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", u)
	}
	return nil
}

// Stats are the sender's counters since New.
type Stats struct {
	Sent      uint64 // events accepted by Send
	Delivered uint64 // events the endpoint answered 2xx
	Failed    uint64 // events given up after their attempts (or refused with 4xx)
	Dropped   uint64 // events dropped unsent because the queue was full or at shutdown
	Retries   uint64 // attempts beyond the first
	Queued    int    // events waiting now
}

// Body is the JSON body of every request.
type Body struct {
	ID    string          `json:"id"`
	Event string          `json:"event"`
	Time  time.Time       `json:"time"`
	Node  string          `json:"node"`
	Data  json.RawMessage `json:"data"`
}

type event struct {
	id, name string
	body     []byte
}

// Sender delivers events to one endpoint. Its methods are safe for
// concurrent use.
type Sender struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	queue  []event // FIFO; queue[0] is next
	stats  Stats
	closed bool

	wake   chan struct{} // 1-buffered: the queue got an event
	done   chan struct{} // closed by Close
	once   sync.Once
	runMu  sync.Mutex // one Run at a time
	cancel context.CancelFunc
}

// New returns a sender; nothing is delivered until Run runs.
func New(cfg Config, log *slog.Logger) *Sender {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		cfg:  cfg,
		log:  log.With("component", "webhook"),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

// Send queues an event; data is marshalled to JSON now. It never blocks.
// When the queue is full the oldest event is dropped. An event whose data
// cannot be marshalled is logged and dropped.
func (s *Sender) Send(name string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		s.log.Error("webhook event not sent: data is not JSON", "event", name, "error", err)
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
		return
	}
	id := newID()
	body, _ := json.Marshal(Body{ID: id, Event: name, Time: time.Now().UTC(), Node: s.cfg.Node, Data: raw})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.stats.Sent++
	if len(s.queue) >= s.cfg.QueueSize {
		s.queue[0] = event{}
		s.queue = s.queue[1:]
		s.stats.Dropped++
		if s.stats.Dropped&(s.stats.Dropped-1) == 0 { // log at powers of two
			s.log.Warn("webhook queue full: dropped the oldest event", "url", s.cfg.URL, "dropped_total", s.stats.Dropped)
		}
	}
	s.queue = append(s.queue, event{id: id, name: name, body: body})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.queue)
	return st
}

// Run delivers queued events until ctx ends or Close is called. When ctx
// ends it makes one last attempt at each queued event, bounded by
// FlushTimeout. Cancellation is not an error: Run returns nil.
func (s *Sender) Run(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	// dctx bounds every attempt: it ends on Close, or FlushTimeout after
	// ctx ends.
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
		case <-ctx.Done():
			t := time.NewTimer(s.cfg.FlushTimeout)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.done:
			case <-dctx.Done():
				return
			}
		case <-dctx.Done():
			return
		}
		cancel()
	}()
	for {
		if ctx.Err() != nil {
			s.flush(dctx)
			return nil
		}
		ev, ok := s.peek()
		if !ok {
			select {
			case <-s.wake:
			case <-ctx.Done():
			case <-dctx.Done():
				return nil
			}
			continue
		}
		s.deliver(ctx, dctx, ev)
		if dctx.Err() != nil {
			return nil
		}
	}
}

// peek returns the oldest queued event without removing it.
func (s *Sender) peek() (event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return event{}, false
	}
	return s.queue[0], true
}

// finish removes ev from the head of the queue (unless Send dropped it
// meanwhile) and counts the outcome.
func (s *Sender) finish(ev event, count *uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 && s.queue[0].id == ev.id {
		s.queue[0] = event{}
		s.queue = s.queue[1:]
	}
	if count != nil {
		*count++
	}
}

// deliver tries ev up to MaxAttempts times. It stops early (leaving ev
// queued for flush) when ctx ends, and at once when dctx ends.
func (s *Sender) deliver(ctx, dctx context.Context, ev event) {
	backoff := s.cfg.InitialBackoff
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			s.mu.Lock()
			s.stats.Retries++
			s.mu.Unlock()
		}
		retry, err := s.post(dctx, ev)
		if err == nil {
			s.finish(ev, &s.stats.Delivered)
			return
		}
		if dctx.Err() != nil {
			return
		}
		if !retry || attempt >= s.cfg.MaxAttempts {
			s.log.Warn("webhook event not delivered", "url", s.cfg.URL, "event", ev.name, "delivery", ev.id, "attempts", attempt, "error", err)
			s.finish(ev, &s.stats.Failed)
			return
		}
		s.log.Debug("webhook attempt failed; retrying", "url", s.cfg.URL, "event", ev.name, "attempt", attempt, "error", err)
		wait := jitter(backoff)
		backoff = min(backoff*2, s.cfg.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		case <-dctx.Done():
			t.Stop()
			return
		}
	}
}

// flush makes one attempt at each queued event until dctx ends, then
// drops what is left.
func (s *Sender) flush(dctx context.Context) {
	for dctx.Err() == nil {
		ev, ok := s.peek()
		if !ok {
			break
		}
		if _, err := s.post(dctx, ev); err == nil {
			s.finish(ev, &s.stats.Delivered)
		} else {
			s.finish(ev, &s.stats.Failed)
		}
	}
	s.mu.Lock()
	if n := len(s.queue); n > 0 {
		s.stats.Dropped += uint64(n)
		s.log.Warn("webhook events dropped at shutdown", "url", s.cfg.URL, "events", n)
		s.queue = nil
	}
	s.mu.Unlock()
}

// post makes one attempt. retry says whether a failure may succeed later.
func (s *Sender) post(ctx context.Context, ev event) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(ev.body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "relaymesh-webhook/1")
	req.Header.Set(HeaderEvent, ev.name)
	req.Header.Set(HeaderDelivery, ev.id)
	req.Header.Set(HeaderTimestamp, ts)
	if len(s.cfg.Secret) > 0 {
		req.Header.Set(HeaderSignature, "sha256="+Sign(s.cfg.Secret, ts, ev.body))
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		// a URL the outbound policy refuses stays refused
		return !errors.Is(err, netutil.ErrFetchDenied), err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("HTTP %d", c)
	default:
		return false, fmt.Errorf("HTTP %d (refused; not retried)", c)
	}
}

// Close stops Run and any delivery in progress at once; queued events are
// not sent and later Sends are ignored. It is idempotent.
func (s *Sender) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
	})
	return nil
}

// Sign returns the hex HMAC-SHA256 of timestamp + "." + body under secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors Verify returns, for errors.Is.
var (
	ErrNoSignature  = errors.New("webhook: no " + HeaderSignature + " header")
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrStale        = errors.New("webhook: timestamp outside the allowed window")
)

// Verify checks a received request: the signature header against the
// HMAC of the timestamp header and body under secret, and the timestamp
// within MaxSkew of now.
func Verify(secret []byte, h http.Header, body []byte) error {
	return VerifyAt(secret, h, body, time.Now())
}

// VerifyAt is Verify with the receiver's clock given.
func VerifyAt(secret []byte, h http.Header, body []byte, now time.Time) error {
	sig := h.Get(HeaderSignature)
	if sig == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("%w: want sha256=<hex>", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	ts := h.Get(HeaderTimestamp)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not unix seconds", ErrStale, HeaderTimestamp, ts)
	}
	want, _ := hex.DecodeString(Sign(secret, ts, body))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(secs, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	return nil
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func jitter(d time.Duration) time.Duration {
	f := 0.8 + 0.4*mrand.Float64()
	return time.Duration(float64(d) * f)
}
