package flow

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// TestBitrateFloor: a source below its min_bitrate over a whole window
// is unhealthy (rule bitrate) and healthy again after a whole window at
// or above it; without a floor, or while it is silent, the rule is quiet.
func TestBitrateFloor(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t0 := time.Now()
	// feed sends bits/s in 40 ms video packets from..to, media time
	// advancing with arrival (no other rule fires)
	feed := func(h *sourceHealth, from, to time.Duration, bits int) {
		for d := from; d < to; d += 40 * time.Millisecond {
			h.packet(t0.Add(d), &unit.Packet{Kind: unit.KindVideo, Time: d.Milliseconds(), Payload: make([]byte, bits/8/25)})
		}
	}
	h := &sourceHealth{min: 500_000, rate: -1}
	feed(h, 0, 1900*time.Millisecond, 100_000)
	if h.check(t0.Add(1900*time.Millisecond), "primary", log); h.sick != "" {
		t.Fatalf("unhealthy before a whole window: %s (%s)", h.sick, h.detail)
	}
	feed(h, 1900*time.Millisecond, 2100*time.Millisecond, 100_000)
	h.check(t0.Add(2100*time.Millisecond), "primary", log)
	if h.sick != RuleBitrate || !strings.Contains(h.detail, "below its min_bitrate 500000") {
		t.Fatalf("100 kbit/s under a 500 kbit/s floor: rule %q (%s), want bitrate", h.sick, h.detail)
	}
	if h.reason() != "health: bitrate" {
		t.Errorf("switch reason %q, want health: bitrate", h.reason())
	}
	feed(h, 2100*time.Millisecond, 4200*time.Millisecond, 1_000_000)
	if !h.check(t0.Add(4200*time.Millisecond), "primary", log) || h.sick != "" {
		t.Errorf("a whole window at 1 Mbit/s: rule %q (%s), want healthy again", h.sick, h.detail)
	}
	// silent: gone, not unhealthy
	if h.check(t0.Add(6500*time.Millisecond), "primary", log); h.sick != "" {
		t.Errorf("silent source judged unhealthy: %s", h.sick)
	}
	// no floor
	n := &sourceHealth{rate: -1}
	feed(n, 0, 4*time.Second, 10_000)
	if n.check(t0.Add(4*time.Second), "primary", log); n.sick != "" {
		t.Errorf("no floor, 10 kbit/s: rule %q, want none", n.sick)
	}
}

// TestHealthThroughPause: a source that broke a rule (here the bitrate
// floor) and pauses for less than floorSilent, as a publisher stalled on
// a loaded machine does, is still unhealthy when it delivers again; after
// a longer silence (gone) it starts afresh, as does a healthy source.
func TestHealthThroughPause(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t0 := time.Now()
	feed := func(h *sourceHealth, from, to time.Duration) {
		for d := from; d < to; d += 40 * time.Millisecond {
			h.packet(t0.Add(d), &unit.Packet{Kind: unit.KindVideo, Time: d.Milliseconds(), Payload: make([]byte, 500)})
		}
	}
	for _, c := range []struct {
		name  string
		pause time.Duration
		want  string
	}{
		{"a 500 ms pause", 500 * time.Millisecond, RuleBitrate},
		{"gone for 1.5 s", 1500 * time.Millisecond, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &sourceHealth{min: 500_000, rate: -1}
			feed(h, 0, 2100*time.Millisecond) // 100 kbit/s
			if h.check(t0.Add(2100*time.Millisecond), "primary", log); h.sick != RuleBitrate {
				t.Fatalf("100 kbit/s under a 500 kbit/s floor: rule %q, want bitrate", h.sick)
			}
			back := 2100*time.Millisecond + c.pause
			h.restart(t0.Add(back))
			feed(h, back, back+100*time.Millisecond)
			if h.check(t0.Add(back+100*time.Millisecond), "primary", log); h.sick != c.want {
				t.Errorf("after the pause: rule %q (%s), want %q", h.sick, h.detail, c.want)
			}
		})
	}
}
