package agent

// The agent tests' one webhook receiver, for the tests of this package
// and of agent_test (exported for them).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/webhook"
)

// HookSecret is the key every HookSink verifies with.
const HookSecret = "agent-test-webhook-secret-32by!!"

// HookSink is a webhook receiver: it verifies each request's signature
// and keeps the events in arrival order.
type HookSink struct {
	srv *httptest.Server
	// SecretFile holds HookSecret (with a newline, as an editor leaves
	// it) for webhooks.secret_file.
	SecretFile string
	mu         sync.Mutex
	got        []Hook
	errs       []error
}

// Hook is one received event.
type Hook struct {
	Event string
	Node  string
	Raw   string         // the data as sent
	Data  map[string]any // Raw decoded
	At    time.Time      // when the receiver got it
}

// NewHookSink starts a receiver that stops when the test ends.
func NewHookSink(t *testing.T) *HookSink {
	t.Helper()
	s := &HookSink{SecretFile: filepath.Join(t.TempDir(), "hook.key")}
	if err := os.WriteFile(s.SecretFile, []byte(HookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b webhook.Body
		h := Hook{At: time.Now()}
		err := webhook.Verify([]byte(HookSecret), r.Header, body)
		if err == nil {
			err = json.Unmarshal(body, &b)
		}
		if err == nil {
			h.Event, h.Node, h.Raw = b.Event, b.Node, string(b.Data)
			err = json.Unmarshal(b.Data, &h.Data)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", body, err))
			return
		}
		s.got = append(s.got, h)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the receiver's webhooks.url.
func (s *HookSink) URL() string { return s.srv.URL }

// Config is the [webhooks] section that points an agent here.
func (s *HookSink) Config() string {
	return fmt.Sprintf("[webhooks]\nurl = %q\nsecret_file = %q\n", s.srv.URL, s.SecretFile)
}

// Hooks returns what arrived, in order; with names, only those events. A
// request the receiver refused fails the test.
func (s *HookSink) Hooks(t *testing.T, names ...string) []Hook {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) > 0 {
		t.Errorf("the receiver refused requests: %v", s.errs)
	}
	var out []Hook
	for _, h := range s.got {
		keep := len(names) == 0
		for _, n := range names {
			keep = keep || h.Event == n
		}
		if keep {
			out = append(out, h)
		}
	}
	return out
}

// Lines returns what arrived as "event data-json" lines, in order.
func (s *HookSink) Lines(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, h := range s.Hooks(t) {
		out = append(out, h.Event+" "+h.Raw)
	}
	return out
}

// WaitFor polls until an event named name whose data has every field of
// want arrived, and returns it.
func (s *HookSink) WaitFor(t *testing.T, d time.Duration, name string, want map[string]any) Hook {
	t.Helper()
	var found Hook
	testmedia.Eventually(t, d, fmt.Sprintf("webhook %s %v", name, want), func() bool {
		for _, h := range s.Hooks(t, name) {
			if HookMatches(h.Data, want) {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

// HookMatches reports whether data has every field of want (compared as
// printed).
func HookMatches(data, want map[string]any) bool {
	for k, v := range want {
		if fmt.Sprint(data[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}
