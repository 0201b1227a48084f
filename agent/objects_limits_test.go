package agent_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestObjectLimitsUnderLoad: objects.max_flows and objects.max_relays
// hold when the API's creates race each other (the registry checks them
// under its lock): of six concurrent creates of each kind exactly the
// limit succeed, the others are 429 naming the setting.
func TestObjectLimitsUnderLoad(t *testing.T) {
	a := startAgent(t, "[objects]\nmax_flows = 2\nmax_relays = 3\n")
	kinds := []struct {
		path, key string
		max       int
		body      func(i int) map[string]any
	}{
		{"/v1/flows", "objects.max_flows", 2, func(i int) map[string]any {
			return map[string]any{"id": fmt.Sprintf("f%d", i), "source": map[string]any{"type": "rtmp-push", "stream": fmt.Sprintf("live/f%d", i)},
				"outputs": []any{map[string]any{"name": "o", "type": "httpflv"}}}
		}},
		{"/v1/relays", "objects.max_relays", 3, func(i int) map[string]any {
			return map[string]any{"id": fmt.Sprintf("r%d", i), "pattern": "live/*", "url": "rtmp://127.0.0.1:1/a/b",
				"start_time": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "end_time": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
		}},
	}
	for _, k := range kinds {
		t.Run(k.key, func(t *testing.T) {
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Go(func() {
					var v map[string]any
					st := send(t, "POST", a.api(k.path), k.body(i), &v)
					if msg, _ := v["message"].(string); st == 429 && !strings.Contains(msg, k.key) {
						t.Errorf("429 %q does not name %s", msg, k.key)
					}
					mu.Lock()
					codes[st]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if codes[201] != k.max || codes[429] != 6-k.max {
				t.Errorf("status counts %v, want %d created and %d refused", codes, k.max, 6-k.max)
			}
			var list map[string][]map[string]any
			send(t, "GET", a.api(k.path), nil, &list)
			if n := len(list[strings.TrimPrefix(k.path, "/v1/")]); n != k.max {
				t.Errorf("%d listed, want %d", n, k.max)
			}
		})
	}
}
