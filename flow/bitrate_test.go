package flow

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// feed publishes 25 video packets a second of *size bytes each (a
// keyframe every 25) to key until ctx ends. Like an encoder, it
// publishes again when it is disconnected; kicks counts those.
func feed(t *testing.T, ctx context.Context, hub *media.Hub, key string, size *atomic.Int64, kicks *atomic.Int64) {
	t.Helper()
	pub, err := hub.Publish(key, media.PublisherInfo{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer func() { pub.Close() }()
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for n := int64(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p := &unit.Packet{Kind: unit.KindVideo, Time: n * 40, Keyframe: n%25 == 0, Payload: make([]byte, size.Load())}
			if p.Keyframe {
				p.Payload[0] = 0x17
			} else {
				p.Payload[0] = 0x27
			}
			if pub.Write(p) != nil {
				kicks.Add(1)
				pub.Close()
				// as an encoder does: again until the hub takes it (the
				// cut publisher may not have left yet: busy) or the test
				// ends; the deferred Close keeps the last one it had
				for {
					next, err := hub.Publish(key, media.PublisherInfo{Protocol: "test"})
					if err == nil {
						pub = next
						break
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}
	}()
}

// TestMaxBitrateCut: a source over its max_bitrate is cut and the flow's
// reason says so; an output over its max_bitrate is stopped and refuses
// players with the reason; both come back once the bitrate falls.
func TestMaxBitrateCut(t *testing.T) {
	if testing.Short() {
		t.Skip("measures bitrate windows for ~10 s")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	defer hub.Close()
	m := NewManager(hub, log, lifecycle.Env{})
	defer m.Close()
	spec := Spec{ID: "br",
		Source: Source{Type: SrcRTMPPush, Stream: "live/br", MaxBitrate: 1_000_000},
		Outputs: []Output{
			{Name: "small", Type: OutHTTPFLV, MaxBitrate: 500_000},
			{Name: "big", Type: OutRTMPPull},
		}}
	if err := m.Create(spec, lifecycle.CreateOpts{From: lifecycle.FromStore, State: lifecycle.Standby}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background(), "br"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var size, kicks atomic.Int64
	size.Store(3000) // 600 kbit/s: over the output's limit, under the source's
	feed(t, ctx, hub, "live/br", &size, &kicks)
	player := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}
	view := func() View { v, _ := m.Get("br"); return v }

	testmedia.Eventually(t, 8*time.Second, "output small cut at 600 kbit/s", func() bool {
		return strings.Contains(view().Reason, `output "small": the flow carries`)
	})
	if err := m.Authorize(media.Access{Protocol: ProtoHTTPFLV, Action: "play", Key: "flow/br", Remote: player}); err == nil || !strings.Contains(err.Error(), "max_bitrate 500000") {
		t.Errorf("player of the cut output: %v, want a refusal naming max_bitrate", err)
	}
	if err := m.Authorize(media.Access{Protocol: ProtoRTMP, Action: "play", Key: "flow/br", Remote: player}); err != nil {
		t.Errorf("player of the uncut output refused: %v", err)
	}
	if v := view(); v.Status.Sources[0].Cut != "" || v.State != lifecycle.Running {
		t.Errorf("source cut under its limit or flow not running: %+v", v)
	}

	size.Store(10000) // 2 Mbit/s: over the source's limit
	testmedia.Eventually(t, 8*time.Second, "source cut at 2 Mbit/s", func() bool {
		v := view()
		return strings.Contains(v.Status.Sources[0].Cut, "over max_bitrate 1000000") && strings.Contains(v.Reason, `source "primary"`)
	})
	if !strings.Contains(view().Status.Sources[0].Cut, "publisher disconnected") {
		t.Errorf("cut %q does not say the publisher was disconnected", view().Status.Sources[0].Cut)
	}
	testmedia.Eventually(t, 2*time.Second, "the over-bitrate publisher's next write to fail", func() bool { return kicks.Load() > 0 })
	// a cut source feeds nothing: the flow's own bitrate falls, so the
	// output comes back
	testmedia.Eventually(t, 8*time.Second, "output restored while the source is cut", func() bool {
		return !strings.Contains(view().Reason, `output "small"`)
	})

	size.Store(1000) // 200 kbit/s: under both
	testmedia.Eventually(t, 8*time.Second, "source restored", func() bool {
		v := view()
		return v.Status.Sources[0].Cut == "" && v.Reason == "" && v.Status.Outputs[0].Bitrate > 0
	})
	if err := m.Authorize(media.Access{Protocol: ProtoHTTPFLV, Action: "play", Key: "flow/br", Remote: player}); err != nil {
		t.Errorf("player of the restored output refused: %v", err)
	}
}
