package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/webhook"
)

// receiver is an httptest endpoint that records what it got and answers
// with the status its script says for each request in turn (then 200).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	script []int
}

type received struct {
	header http.Header
	body   []byte
	status int
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusOK
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		r.got = append(r.got, received{req.Header.Clone(), body, status})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) delivered() []received {
	var out []received
	for _, g := range r.requests() {
		if g.status == http.StatusOK {
			out = append(out, g)
		}
	}
	return out
}

// start runs s until the test ends, and checks Run returns.
func start(t *testing.T, s *webhook.Sender) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		s.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after cancel and Close")
		}
	})
}

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestSignedBody(t *testing.T) {
	r := newReceiver(t)
	s := webhook.New(webhook.Config{URL: r.srv.URL, Secret: secret, Node: "fra-1"}, nil)
	start(t, s)
	s.Send("stream.published", map[string]string{"stream": "live/cam1"})
	poll.Until(t, 5*time.Second, "one delivery", func() bool { return len(r.delivered()) == 1 })
	g := r.delivered()[0]

	if err := webhook.Verify(secret, g.header, g.body); err != nil {
		t.Errorf("Verify: %v", err)
	}
	var b webhook.Body
	if err := json.Unmarshal(g.body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Event != "stream.published" || b.Node != "fra-1" || string(b.Data) != `{"stream":"live/cam1"}` {
		t.Errorf("body = %s", g.body)
	}
	if time.Since(b.Time) > time.Minute || b.Time.After(time.Now()) {
		t.Errorf("time = %v, want about now", b.Time)
	}
	if g.header.Get(webhook.HeaderEvent) != "stream.published" || g.header.Get(webhook.HeaderDelivery) != b.ID || len(b.ID) != 32 {
		t.Errorf("headers %v, id %q", g.header, b.ID)
	}
	if st := s.Stats(); st.Delivered != 1 || st.Sent != 1 || st.Queued != 0 {
		t.Errorf("stats = %+v", st)
	}

	// tampering is detected
	ts := g.header.Get(webhook.HeaderTimestamp)
	tests := []struct {
		name   string
		secret []byte
		header func(h http.Header)
		body   []byte
		want   error
	}{
		{"wrong secret", []byte("another secret"), nil, g.body, webhook.ErrBadSignature},
		{"changed body", secret, nil, append([]byte(" "), g.body...), webhook.ErrBadSignature},
		{"changed timestamp", secret, func(h http.Header) {
			n, _ := strconv.ParseInt(ts, 10, 64)
			h.Set(webhook.HeaderTimestamp, strconv.FormatInt(n+1, 10))
		}, g.body, webhook.ErrBadSignature},
		{"no signature", secret, func(h http.Header) { h.Del(webhook.HeaderSignature) }, g.body, webhook.ErrNoSignature},
		{"not hex", secret, func(h http.Header) { h.Set(webhook.HeaderSignature, "sha256=zz") }, g.body, webhook.ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := g.header.Clone()
			if tc.header != nil {
				tc.header(h)
			}
			if err := webhook.Verify(tc.secret, h, tc.body); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("replayed later", func(t *testing.T) {
		err := webhook.VerifyAt(secret, g.header, g.body, time.Now().Add(webhook.MaxSkew+time.Minute))
		if !errors.Is(err, webhook.ErrStale) {
			t.Errorf("VerifyAt = %v, want ErrStale", err)
		}
	})
}

func TestRetryThenSuccess(t *testing.T) {
	r := newReceiver(t, 500, 503)
	s := webhook.New(webhook.Config{URL: r.srv.URL, Secret: secret, InitialBackoff: 20 * time.Millisecond}, nil)
	start(t, s)
	s.Send("member.join", map[string]string{"member": "sin-1"})
	poll.Until(t, 5*time.Second, "delivery after two 5xx", func() bool { return len(r.delivered()) == 1 })
	reqs := r.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3 (500, 503, 200)", len(reqs))
	}
	id := reqs[0].header.Get(webhook.HeaderDelivery)
	for i, g := range reqs {
		if g.header.Get(webhook.HeaderDelivery) != id {
			t.Errorf("attempt %d has delivery id %q, want %q on every retry", i, g.header.Get(webhook.HeaderDelivery), id)
		}
		if err := webhook.Verify(secret, g.header, g.body); err != nil {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	if st := s.Stats(); st.Delivered != 1 || st.Retries != 2 || st.Failed != 0 {
		t.Errorf("stats = %+v, want 1 delivered after 2 retries", st)
	}
}

func TestGiveUp(t *testing.T) {
	tests := []struct {
		name     string
		script   []int
		attempts int
	}{
		{"5xx until the attempts run out", []int{500, 500, 500}, 3},
		{"4xx is not retried", []int{400}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, tc.script...)
			s := webhook.New(webhook.Config{URL: r.srv.URL, MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond}, nil)
			start(t, s)
			s.Send("a", 1)
			s.Send("b", 2)
			poll.Until(t, 5*time.Second, "b delivered", func() bool { return len(r.delivered()) == 1 })
			if n := len(r.requests()); n != tc.attempts+1 {
				t.Errorf("requests = %d, want %d for a then 1 for b", n, tc.attempts)
			}
			if st := s.Stats(); st.Failed != 1 || st.Delivered != 1 {
				t.Errorf("stats = %+v, want 1 failed, 1 delivered", st)
			}
		})
	}
}

// deadURL is an address nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// hangingURL accepts connections and never answers.
func hangingURL(t *testing.T) string {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); srv.Close() })
	return srv.URL
}

func TestSendNeverBlocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(*testing.T) string
	}{{"refused", deadURL}, {"hanging", hangingURL}} {
		t.Run(tc.name, func(t *testing.T) {
			s := webhook.New(webhook.Config{URL: tc.url(t), QueueSize: 8, Timeout: time.Hour, InitialBackoff: time.Hour, FlushTimeout: 100 * time.Millisecond}, nil)
			start(t, s)
			done := make(chan struct{})
			go func() {
				for i := range 10000 {
					s.Send("tick", i)
				}
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("10000 Sends to a dead endpoint did not return within 30 s")
			}
			st := s.Stats()
			if st.Sent != 10000 || st.Queued > 8 || st.Dropped < 10000-8-1 {
				t.Errorf("stats = %+v, want 10000 sent, at most 8 queued, the rest dropped", st)
			}
		})
	}
}

func TestOrderPreserved(t *testing.T) {
	// every third request fails once: retries must not reorder
	var mu sync.Mutex
	var got []int
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Data int }
		json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%3 == 0 {
			w.WriteHeader(500)
			return
		}
		got = append(got, b.Data)
	}))
	t.Cleanup(srv.Close)
	s := webhook.New(webhook.Config{URL: srv.URL, InitialBackoff: time.Millisecond, QueueSize: 1000}, nil)
	const events = 200
	for i := range events {
		s.Send("seq", i)
	}
	start(t, s)
	poll.Until(t, 20*time.Second, "all events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == events })
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d arrived as number %d: order not kept (%v...)", v, i, got[:i+1])
		}
	}
}

func TestFlushAtShutdownAndClose(t *testing.T) {
	r := newReceiver(t)
	s := webhook.New(webhook.Config{URL: r.srv.URL}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already over: Run only flushes
	for i := range 3 {
		s.Send("bye", i)
	}
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(r.delivered()); n != 3 {
		t.Errorf("delivered %d at shutdown, want 3", n)
	}
	s.Close()
	s.Close()
	s.Send("after close", 0)
	if st := s.Stats(); st.Sent != 3 || st.Queued != 0 {
		t.Errorf("stats = %+v: Send after Close must be ignored", st)
	}
}

func TestValidateURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/relaymesh", true},
		{"http://127.0.0.1:8080/x", true},
		{"ftp://example.com/", false},
		{"/relative", false},
		{"http://", false},
		{"::", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			if err := webhook.ValidateURL(tc.url); (err == nil) != tc.ok {
				t.Errorf("ValidateURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}
