// Package poll is the tests' one way to wait: poll a condition until it
// holds or a deadline passes, never sleep and hope.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 10 * time.Millisecond

// Until calls cond every Interval until it returns true, and returns how
// long that took; when d passes first it fails the test with what it was
// waiting for.
func Until(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(Interval)
	}
	return time.Since(start)
}
