package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// waitSent waits until the agent has sent at least n media bytes of key
// to its readers (relaymesh_stream_sent_bytes_total), so a test can let a
// player get some media before it makes the next thing happen, without
// guessing how long that takes.
func waitSent(t *testing.T, a *agentProc, key string, n float64) {
	t.Helper()
	testmedia.Eventually(t, 15*time.Second, fmt.Sprintf("%.0f bytes of %s sent to readers", n, key), func() bool {
		mfs, err := promtest.TryScrape(a.api("/metrics"))
		if err != nil {
			return false
		}
		v, _ := promtest.Value(mfs, "relaymesh_stream_sent_bytes_total", map[string]string{"stream": key})
		return v >= n
	})
}
