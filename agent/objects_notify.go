package agent

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/task"
)

// webhookSigHeader carries hex(HMAC-SHA256(secret, timestamp + "." + body)).
const (
	webhookSigHeader  = "X-Relaymesh-Signature"
	webhookTimeHeader = "X-Relaymesh-Timestamp"
)

// hookSender posts task events to one callback URL in order, signed, with
// retries and backoff, from its own goroutine: Notify never blocks (a full
// queue drops the event and logs it). It stands in until package webhook
// lands.
type hookSender struct {
	a      *Agent
	url    string
	mu     sync.Mutex
	queue  chan []byte
	client *http.Client
}

var (
	hookMu      sync.Mutex
	hookSenders = map[string]*hookSender{}
)

// defaultNotifier returns the sender for a callback URL, one per URL so
// events of a URL stay in order. The HMAC secret is the API token
// (api.token_file); without one the events go unsigned.
func (a *Agent) defaultNotifier(callback string) task.Notifier {
	hookMu.Lock()
	defer hookMu.Unlock()
	if h := hookSenders[callback]; h != nil {
		return h
	}
	h := &hookSender{a: a, url: callback, queue: make(chan []byte, 256), client: &http.Client{Timeout: 5 * time.Second}}
	hookSenders[callback] = h
	go h.loop()
	return h
}

func (h *hookSender) Notify(event string, payload any) {
	body, err := json.Marshal(payload)
	if err != nil {
		return
	}
	select {
	case h.queue <- body:
	default:
		h.a.log.Warn("webhook queue full: event dropped", "url", h.url, "event", event)
	}
}

func (h *hookSender) loop() {
	for body := range h.queue {
		backoff := 500 * time.Millisecond
		for attempt := 1; attempt <= 6; attempt++ {
			if h.post(body) {
				break
			}
			select {
			case <-h.a.stopping:
				return
			case <-time.After(backoff):
			}
			backoff *= 2
		}
	}
}

func (h *hookSender) post(body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return true // cannot ever succeed
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhookTimeHeader, ts)
	if tok, _ := h.a.config().API.LoadToken(); tok != "" {
		req.Header.Set(webhookSigHeader, "sha256="+signHook([]byte(tok), ts, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.a.log.Warn("webhook failed", "url", h.url, "err", err)
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests
}

func signHook(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
