package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// TestLoadOf pins how the hub's streams become the advertised load.
func TestLoadOf(t *testing.T) {
	tests := []struct {
		name    string
		streams []StreamRate
		want    Load
	}{
		{"idle", nil, Load{}},
		{"one stream, no readers", []StreamRate{{Bitrate: 2_500_000}}, Load{Streams: 1, MbpsIn: 2.5}},
		{"readers multiply the out rate", []StreamRate{{Bitrate: 2_000_000, Readers: 3}, {Bitrate: 1_000_000, Readers: 1}},
			Load{Streams: 2, MbpsIn: 3, MbpsOut: 7}},
		{"rounded to 0.01", []StreamRate{{Bitrate: 1_234_567, Readers: 2}}, Load{Streams: 1, MbpsIn: 1.23, MbpsOut: 2.47}},
		{"a stream without bitrate yet still counts", []StreamRate{{Readers: 4}}, Load{Streams: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LoadOf(tt.streams); got != tt.want {
				t.Errorf("LoadOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestReportLoad: two nodes; the load one reports from its streams
// reaches the other's member table, and ReportLoad returns when its
// context ends.
func TestReportLoad(t *testing.T) {
	nodes := startCluster(t, 2, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- nodes[0].ReportLoad(ctx, 10*time.Millisecond, func() []StreamRate { return []StreamRate{{Bitrate: 3_000_000, Readers: 2}} })
	}()
	want := Load{Streams: 1, MbpsIn: 3, MbpsOut: 6}
	poll.Until(t, 10*time.Second, "n1 to see n0's load", func() bool {
		for _, m := range nodes[1].Members() {
			if m.Name == "n0" && m.Meta.Load == want {
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ReportLoad = %v after cancel, want nil", err)
	}
}
