package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
)

// fakeNode is the node as the API reads it, without an agent: no
// streams, no cluster, no objects (their routes are registered but not
// called here).
type fakeNode struct {
	cfg      *config.Config
	stopping bool
}

func (n *fakeNode) Config() *config.Config { return n.cfg }
func (n *fakeNode) Health() client.Health {
	if n.stopping {
		return client.Health{Status: "stopping"}
	}
	return client.Health{Status: "ok", Node: "n1", Role: "standalone", Version: "test"}
}
func (n *fakeNode) Streams() []*media.Stream             { return nil }
func (n *fakeNode) Stream(string) *media.Stream          { return nil }
func (n *fakeNode) SRTStats(string) []srt.ConnStats      { return nil }
func (n *fakeNode) Flows() Flows                         { return nil }
func (n *fakeNode) Relays() Relays                       { return nil }
func (n *fakeNode) Tasks() Tasks                         { return nil }
func (n *fakeNode) Write(op, _ func() error) error       { return op() }
func (n *fakeNode) SignPublish(string, time.Time) string { return "" }

// TestServerRoutes: each route answers through the auth middleware as a
// client sees it, on a real loopback listener.
func TestServerRoutes(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "api.token")
	if err := os.WriteFile(tokenFile, []byte("an-api-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		method, path string
		token        string
		stopping     bool
		wantStatus   int
		wantBody     string // a substring of the answer
	}{
		{name: "health with details on loopback", method: "GET", path: "/healthz", wantStatus: 200, wantBody: `"node": "n1"`},
		{name: "health while stopping", method: "GET", path: "/healthz", stopping: true, wantStatus: 503, wantBody: `"status": "stopping"`},
		{name: "no streams", method: "GET", path: "/v1/streams", wantStatus: 200, wantBody: `"streams": []`},
		{name: "no such stream", method: "GET", path: "/v1/streams/live/x", wantStatus: 404, wantBody: `"message": "no live stream live/x"`},
		{name: "cluster routes without a cluster", method: "GET", path: "/v1/nodes", wantStatus: 404, wantBody: `"code": "cluster_disabled"`},
		{name: "locate without a cluster", method: "GET", path: "/v1/locate?app=live&stream=a", wantStatus: 404, wantBody: `"code": "cluster_disabled"`},
		{name: "unknown endpoint", method: "GET", path: "/v1/nope", wantStatus: 404, wantBody: `"message": "no such endpoint: /v1/nope"`},
		{name: "change without the token", method: "POST", path: "/v1/flows", wantStatus: 401, wantBody: `"code": "unauthorized"`},
		{name: "change with a wrong token", method: "DELETE", path: "/v1/tasks/x", token: "not-the-token-0123456789", wantStatus: 401, wantBody: `api.token_file`},
		{name: "no metrics handler", method: "GET", path: "/metrics", wantStatus: 404, wantBody: `no such endpoint`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.API.Listen = "127.0.0.1:0"
			cfg.API.TokenFile = tokenFile
			n := &fakeNode{cfg: cfg, stopping: tt.stopping}
			s, err := New(cfg.API.Listen, Deps{Log: slog.New(slog.DiscardHandler), Node: n, Streams: n, Signer: n, Objects: n})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
				s.Close() // again: idempotent
			})
			req, err := http.NewRequest(tt.method, "http://"+s.Addr().String()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("%s %s = %d %s\nwant %d with %s", tt.method, tt.path, res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q, want application/json", res.Header.Get("Content-Type"))
			}
			if res.StatusCode == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Errorf("answer is not JSON: %v", err)
			}
		})
	}
}
