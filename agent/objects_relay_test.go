package agent

import (
	"context"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestRelayPushesMatchingStreams: a relay rule live/* -> this node's own
// RTMP ingest under another app pushes a published stream (through
// media/relay, over the network) while its window is open; deleting the
// rule stops the push.
func TestRelayPushesMatchingStreams(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	o := startObjAgent(t, allowLoopback) // the relay pushes to this node's own ingest
	now := time.Now().UTC()
	body := map[string]any{"id": "out", "pattern": "live/*", "url": "rtmp://" + o.a.listenAddr("rtmp") + "/relayed/cam",
		"start_time": now.Add(-time.Minute), "end_time": now.Add(time.Hour)}
	var v map[string]any
	if st := o.call(t, "POST", "/v1/relays", testToken, body, &v); st != 201 || v["state"] != "running" {
		t.Fatalf("create: %d %v", st, v)
	}
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 10 * time.Second}.Defaults()
	testmedia.Publish(t, context.Background(), src, "rtmp://"+o.a.listenAddr("rtmp")+"/live/cam")
	testmedia.Eventually(t, 10*time.Second, "relayed stream live", func() bool {
		st := o.a.hub.Stream("relayed/cam")
		return st != nil && st.Codecs().Video != ""
	})
	res, err := testmedia.Read(context.Background(), "http://"+o.a.listenAddr("http")+"/relayed/cam.flv", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoCodec != "h264" || res.VideoFrames < 25 {
		t.Errorf("relayed stream: %+v", res)
	}
	var rv struct {
		Pushes map[string]struct {
			State string `json:"state"`
		} `json:"pushes"`
	}
	o.call(t, "GET", "/v1/relays/out", "", nil, &rv)
	if rv.Pushes["live/cam"].State != "running" {
		t.Errorf("push status %+v, want live/cam running", rv.Pushes)
	}
	if st := o.call(t, "DELETE", "/v1/relays/out", testToken, nil, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	testmedia.Eventually(t, 10*time.Second, "relayed stream gone after delete", func() bool {
		st := o.a.hub.Stream("relayed/cam")
		if st == nil {
			return true
		}
		_, live := st.Publisher()
		return !live
	})
}
