package srt

import (
	"testing"
	"time"
)

func TestConnBuffers(t *testing.T) {
	cases := []struct {
		name    string
		publish bool
		latency time.Duration
		max     int64
		wantFC  int
	}{
		{name: "reader", publish: false, latency: 120 * time.Millisecond, wantFC: minRcvPackets},
		{name: "publisher without a limit keeps libsrt's buffer", publish: true, latency: 120 * time.Millisecond, wantFC: defaultRcvPackets},
		// 3 s at 3 Mbit/s = 1,125,000 bytes / 1316 = 854 messages (integer division), x 5/4
		{name: "publisher at 3 Mbit/s", publish: true, latency: 120 * time.Millisecond, max: 3_000_000, wantFC: 1067},
		// 4 x 2 s at 3 Mbit/s
		{name: "long latency", publish: true, latency: 2 * time.Second, max: 3_000_000, wantFC: 2848},
		{name: "low limit", publish: true, latency: 120 * time.Millisecond, max: 64_000, wantFC: minRcvPackets},
		{name: "high limit", publish: true, latency: time.Second, max: 200_000_000, wantFC: defaultRcvPackets},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fc, rb := connBuffers(c.publish, c.latency, c.max)
			if fc != c.wantFC || rb != c.wantFC*srtUnit {
				t.Errorf("fc %d rcvbuf %d, want %d and %d", fc, rb, c.wantFC, c.wantFC*srtUnit)
			}
		})
	}
}
