package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// logged reports whether the agent logged a line with msg whose reason
// contains want.
func (o *objAgent) logged(msg, want string) bool {
	for _, l := range strings.Split(o.logs.String(), "\n") {
		var rec struct {
			Msg    string `json:"msg"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == msg && strings.Contains(rec.Reason, want) {
			return true
		}
	}
	return false
}

// TestFlowAllowlists: a flow's source and output allowlists are enforced
// on real connections. A publisher outside the source's allow is refused
// (and the refusal logged with the reason), a player outside the output's
// allow gets 403 with the reason; inside both, frames flow.
func TestFlowAllowlists(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	o := startObjAgent(t, nil)
	ctx := context.Background()
	flows := o.client().Flows()
	mk := func(id, allow string) flow.Spec {
		return flow.Spec{ID: id,
			Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/" + id, Allow: []string{allow}},
			Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV, Allow: []string{allow}}}}
	}
	for _, f := range []flow.Spec{mk("closed", "10.0.0.0/8"), mk("open", "127.0.0.0/8")} {
		if _, err := flows.Create(ctx, f); err != nil {
			t.Fatalf("create %s: %v", f.ID, err)
		}
		if _, err := flows.Do(ctx, f.ID, "start"); err != nil {
			t.Fatalf("start %s: %v", f.ID, err)
		}
	}
	rtmpURL := func(key string) string { return "rtmp://" + o.a.listenAddr("rtmp") + "/" + key }
	flvURL := func(key string) string { return "http://" + o.a.listenAddr("http") + "/" + key + ".flv" }
	src := testmedia.Source{Realtime: true, Duration: 8 * time.Second}.Defaults()

	t.Run("publisher outside the source allow", func(t *testing.T) {
		p := testmedia.Publish(t, ctx, src, rtmpURL("live/closed"))
		if err := p.Wait(10 * time.Second); err == nil {
			t.Errorf("ffmpeg published to live/closed from 127.0.0.1 and exited cleanly; want a refusal")
		}
		want := `address 127.0.0.1 is not in the allow list of flow "closed" source "primary"`
		testmedia.Eventually(t, 5*time.Second, "refusal logged with the reason", func() bool {
			return o.logged("connection refused", want)
		})
	})
	t.Run("player outside the output allow", func(t *testing.T) {
		resp, err := http.Get(flvURL("flow/closed"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `address 127.0.0.1 is not in the allow list of flow "closed" output "web"`
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), want) {
			t.Errorf("got %d %q, want 403 naming the output", resp.StatusCode, body)
		}
		if !o.logged("play refused", want) {
			t.Errorf("play refusal not logged with its reason")
		}
	})
	t.Run("inside both allowlists", func(t *testing.T) {
		testmedia.Publish(t, ctx, src, rtmpURL("live/open"))
		// a player that connects before the flow carries media hangs in
		// ffmpeg's probe (the FLV header announces no track): see the report
		o.waitVideo(t, "flow/open")
		res, err := testmedia.Read(ctx, flvURL("flow/open"), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.VideoFrames < 40 {
			t.Errorf("player of the open flow saw %+v, want h264 and >= 40 frames", res)
		}
	})
}

// waitVideo waits until the hub stream key carries video.
func (o *objAgent) waitVideo(t *testing.T, key string) {
	t.Helper()
	testmedia.Eventually(t, 10*time.Second, key+" carries video", func() bool {
		for _, st := range o.a.hub.Streams() {
			if st.Key() == key && st.Codecs().Video != "" {
				return true
			}
		}
		return false
	})
}
