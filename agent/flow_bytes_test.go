package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowSourceSentBytes: a stream whose only reader is a flow shows in
// /metrics (relaymesh_stream_sent_bytes_total) the bytes that flow took
// from it, about what the publisher sent (bytes_in of /v1/streams), not 0.
func TestFlowSourceSentBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("a real-time publisher")
	}
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "")
	ctx := context.Background()
	startFlow(t, ctx, a, flow.Spec{ID: "bo", Source: flow.Source{Type: flow.SrcRTMPPush, Stream: "live/bo"},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}})
	src := testmedia.Source{Realtime: true, Audio: true, Duration: 30 * time.Second}.Defaults()
	testmedia.Publish(t, ctx, src, a.rtmp("live/bo"))
	waitVideo(t, a, "flow/bo")
	var in, sent float64
	var readers string
	defer func() {
		if t.Failed() {
			t.Logf("last seen: bytes in %.0f, sent %.0f, readers %s", in, sent, readers)
		}
	}()
	testmedia.Eventually(t, 20*time.Second, "the source's sent bytes at 90% of its bytes in or more", func() bool {
		streams, err := a.Client().Streams(ctx)
		if err != nil {
			t.Fatalf("GET /v1/streams: %v", err)
		}
		for _, s := range streams {
			if s.Name == "live/bo" {
				in, readers = float64(s.BytesIn), fmt.Sprint(s.Readers)
			}
		}
		sent = streamCounter(a, "relaymesh_stream_sent_bytes_total", "live/bo")
		return in >= 200_000 && sent >= 0.9*in
	})
	t.Logf("live/bo: bytes in %.0f, sent to the flow %.0f (readers %s)", in, sent, readers)
}
