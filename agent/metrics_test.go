package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// testAgentConfig is a standalone config on loopback ports chosen by the
// kernel, with its data under a temp dir.
func testAgentConfig(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.Node.Name = "metrics-node"
	cfg.Node.DataDir = t.TempDir()
	cfg.RTMP.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SRT.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPListen = "127.0.0.1:0"
	cfg.Node.LogLevel = "debug"
	return cfg
}

// runAgent builds and runs an agent in this process until the test ends.
func runAgent(t *testing.T, cfg *config.Config) (*Agent, *testmedia.LogBuffer) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testmedia.LogBuffer{}
	a, err := New(cfg, "", logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("agent still running 20 s after cancel")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	return a, logs
}

// scrape reads the agent's /metrics.
func scrape(t *testing.T, a *Agent) map[string]*dto.MetricFamily {
	t.Helper()
	return promtest.Scrape(t, "http://"+a.listenAddr("api")+"/metrics")
}

// Synthetic FLV tag bodies: the hub only looks at the packet flags.
var (
	tagVideoHeader = []byte{0x17, 0x00, 0, 0, 0}
	tagAudioHeader = []byte{0xaf, 0x00, 0x11, 0x90}
)

// feed publishes key with synthetic packets at fps (a keyframe every
// second, one audio packet per frame) until ctx ends.
func feed(t *testing.T, ctx context.Context, h *media.Hub, key string, fps int) <-chan struct{} {
	t.Helper()
	p, err := h.Publish(key, media.PublisherInfo{Protocol: "test", Remote: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer p.Close()
		p.Write(&unit.Packet{Kind: unit.KindVideo, Header: true, Payload: tagVideoHeader})
		p.Write(&unit.Packet{Kind: unit.KindAudio, Header: true, Payload: tagAudioHeader})
		tick := time.NewTicker(time.Second / time.Duration(fps))
		defer tick.Stop()
		video := make([]byte, 1000) // 1000 B per frame
		audio := make([]byte, 100)
		start := time.Now()
		for i := 0; ; i++ {
			video[0], video[1] = 0x27, 0x01
			if i%fps == 0 {
				video[0] = 0x17
			}
			ms := time.Since(start).Milliseconds()
			if p.Write(&unit.Packet{Kind: unit.KindVideo, Time: ms, Keyframe: i%fps == 0, Payload: video}) != nil {
				return
			}
			audio[0], audio[1] = 0xaf, 0x01
			p.Write(&unit.Packet{Kind: unit.KindAudio, Time: ms, Payload: audio})
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// TestMetricsScrape publishes a synthetic stream with one reader into a
// running agent and scrapes /metrics over HTTP: the per-stream, per-node
// and Go process families are there with bounded labels and plausible
// values.
func TestMetricsScrape(t *testing.T) {
	a, _ := runAgent(t, testAgentConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const fps = 25
	fed := feed(t, ctx, a.hub, "live/metrics", fps)

	rd, err := a.hub.Subscribe(ctx, "live/metrics", media.SubscribeOptions{Info: media.ReaderInfo{Protocol: "test", Remote: "127.0.0.1:2"}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]*unit.Packet, 0, 64)
		for {
			var err error
			if buf, err = rd.Next(ctx, buf); err != nil {
				return
			}
		}
	}()

	st := map[string]string{"stream": "live/metrics"}
	var mfs map[string]*dto.MetricFamily
	testmedia.Eventually(t, 15*time.Second, "a stream with a measured frame rate and keyframe interval", func() bool {
		mfs = scrape(t, a)
		f, _ := promtest.Value(mfs, "relaymesh_stream_frames_per_second", st)
		k, _ := promtest.Value(mfs, "relaymesh_stream_keyframe_interval_seconds", st)
		return f > 0 && k > 0
	})

	tests := []struct {
		name     string
		labels   map[string]string
		min, max float64
	}{
		// the feed writes 25 fps of 1000 B video + 100 B audio
		{"relaymesh_stream_frames_per_second", st, 1, 2 * fps},
		{"relaymesh_stream_keyframe_interval_seconds", st, 0.5, 30},
		{"relaymesh_stream_ingest_bits_per_second", map[string]string{"stream": "live/metrics", "track": "video"}, 8000, 2 * fps * 8000},
		{"relaymesh_stream_ingest_bits_per_second", map[string]string{"stream": "live/metrics", "track": "audio"}, 800, 2 * fps * 800},
		{"relaymesh_stream_readers", st, 1, 1},
		{"relaymesh_stream_publisher_connected", st, 1, 1},
		{"relaymesh_stream_received_bytes_total", st, 1100, 1e9},
		{"relaymesh_stream_frames_total", st, 1, 1e6},
		{"relaymesh_stream_reader_skips_total", st, 0, 0},
		{"relaymesh_stream_readers_dropped_total", st, 0, 0},
		{"relaymesh_stream_uptime_seconds", st, 0, 3600},
		{"relaymesh_streams", nil, 1, 1},
		{"relaymesh_publishers", nil, 1, 1},
		{"relaymesh_ingest_bits_per_second", nil, 8800, 2 * fps * 8800},
		{"relaymesh_egress_bits_per_second", nil, 8800, 2 * fps * 8800},
		{"relaymesh_refused_connections_total", map[string]string{"listener": "rtmp"}, 0, 0},
		{"relaymesh_refused_connections_total", map[string]string{"listener": "srt"}, 0, 0},
		{"relaymesh_srt_connections", map[string]string{"role": "publish"}, 0, 0},
		{"relaymesh_build_info", map[string]string{"version": Version, "role": "standalone", "node": "metrics-node"}, 1, 1},
		{"relaymesh_start_time_seconds", nil, float64(time.Now().Add(-time.Hour).Unix()), float64(time.Now().Unix() + 1)},
		{"relaymesh_events_total", map[string]string{"kind": "stream.published"}, 1, 1},
		{"relaymesh_event_subscriber_missed_total", map[string]string{"subscriber": "ops"}, 0, 0},
		{"relaymesh_webrtc_ingest_dropped_total", map[string]string{"track": "audio", "reason": "bad_opus"}, 0, 0},
		{"go_goroutines", nil, 1, 1e6},
		{"process_resident_memory_bytes", nil, 1, 1e12},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.name, tc.labels), func(t *testing.T) {
			v, ok := promtest.Value(mfs, tc.name, tc.labels)
			if !ok {
				t.Fatalf("no %s%v in /metrics", tc.name, tc.labels)
			}
			if v < tc.min || v > tc.max {
				t.Errorf("%s%v = %v, want %v..%v", tc.name, tc.labels, v, tc.min, tc.max)
			}
		})
	}

	t.Run("types and bounded labels", func(t *testing.T) {
		for name, mf := range mfs {
			if !strings.HasPrefix(name, "relaymesh_") {
				continue
			}
			if strings.HasSuffix(name, "_total") != (mf.GetType() == dto.MetricType_COUNTER) {
				t.Errorf("%s has type %s: counters and only counters end in _total", name, mf.GetType())
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "stream", "track", "listener", "role", "interface", "class", "result", "version", "node", "state", "peer",
						"kind", "subscriber", // event kinds and the agent's own subscribers: fixed sets
						"reason": // the WebRTC ingest's drop reasons: a fixed set
					default:
						t.Errorf("%s has label %q: not one of the bounded label names", name, l.GetName())
					}
				}
			}
		}
	})

	// the stream ends: its series go away with it
	cancel()
	<-fed
	testmedia.Eventually(t, 10*time.Second, "the ended stream gone from /metrics", func() bool {
		mfs = scrape(t, a)
		_, ok := promtest.Value(mfs, "relaymesh_stream_readers", st)
		n, _ := promtest.Value(mfs, "relaymesh_streams", nil)
		return !ok && n == 0
	})
}
