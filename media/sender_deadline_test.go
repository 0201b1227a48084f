package media

import (
	"testing"
	"time"
)

// TestRenewEvery: a write that finds the deadline older than renewEvery
// moves it, so at every write the deadline is at least 0.9x the timeout
// (and the timeout less 1 s above 10 s) ahead: a player that takes bytes
// is never cut, whatever write_timeout is.
func TestRenewEvery(t *testing.T) {
	for _, timeout := range []time.Duration{50 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second} {
		floor := min(timeout*9/10, timeout-time.Second)
		if timeout <= 10*time.Second {
			floor = timeout * 9 / 10
		}
		var set time.Duration // when the deadline was last moved
		deadline := timeout
		// a write every step, for 3 timeouts
		for _, step := range []time.Duration{time.Millisecond, timeout / 7, timeout / 3} {
			for now := time.Duration(0); now < 3*timeout; now += step {
				if now-set >= renewEvery(timeout) {
					set, deadline = now, now+timeout
				}
				if ahead := deadline - now; ahead < floor {
					t.Fatalf("timeout %v, writes every %v: at %v the deadline is %v ahead, want at least %v", timeout, step, now, ahead, floor)
				}
			}
		}
	}
}
