package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/config"
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

// TestRelayDestinationRules: an incomplete destination is refused at
// create with what to add; an RTMP stream relayed to an SRT destination
// (this node's own SRT ingest) arrives remuxed, with both codecs.
func TestRelayDestinationRules(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	// the SRT destination is this node's own listener on loopback
	o := startObjAgent(t, func(c *config.Config) { c.Objects.FetchAllow = []string{"127.0.0.1/32"} })
	now := time.Now().UTC()
	rtmpAddr, srtAddr := o.a.listenAddr("rtmp"), o.a.listenAddr("srt")
	refused := []struct{ name, url, want string }{
		{"rtmp host:port only", "rtmp://" + rtmpAddr, "add them after the host, as in /live/STREAM-KEY"},
		{"rtmp app only", "rtmp://" + rtmpAddr + "/live", "names no app and stream"},
		{"srt without streamid", "srt://" + srtAddr, "add ?streamid=publish:app/name"},
		{"srt without port", "srt://127.0.0.1?streamid=publish:a/b", "has no port"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			body := map[string]any{"id": "bad", "pattern": "live/*", "url": c.url, "start_time": now.Add(-time.Minute), "end_time": now.Add(time.Hour)}
			if st := o.call(t, "POST", "/v1/relays", testToken, body, &e); st != 400 || e.Field != "url" || !strings.Contains(e.Message, c.want) {
				t.Fatalf("create: %d %+v, want 400 on url saying %q", st, e, c.want)
			}
			if st := o.call(t, "GET", "/v1/relays/bad", "", nil, nil); st != 404 {
				t.Errorf("refused relay kept: GET %d", st)
			}
		})
	}

	t.Run("rtmp stream to an srt destination", func(t *testing.T) {
		body := map[string]any{"id": "to-srt", "pattern": "live/*", "url": "srt://" + srtAddr + "?streamid=publish:remuxed/cam",
			"start_time": now.Add(-time.Minute), "end_time": now.Add(time.Hour)}
		var v map[string]any
		if st := o.call(t, "POST", "/v1/relays", testToken, body, &v); st != 201 {
			t.Fatalf("create: %d %v", st, v)
		}
		src := testmedia.Source{Audio: true, Realtime: true, Duration: 12 * time.Second}.Defaults()
		testmedia.Publish(t, context.Background(), src, "rtmp://"+rtmpAddr+"/live/cam")
		testmedia.Eventually(t, 15*time.Second, "remuxed stream live with video and audio", func() bool {
			st := o.a.hub.Stream("remuxed/cam")
			return st != nil && st.Codecs().Video != "" && st.Codecs().Audio != ""
		})
		if p, ok := o.a.hub.Stream("remuxed/cam").Publisher(); !ok || p.Protocol != "srt" {
			t.Errorf("remuxed/cam publisher %+v, want the relay's SRT connection", p)
		}
		res, err := testmedia.Read(context.Background(), "http://"+o.a.listenAddr("http")+"/remuxed/cam.flv", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.VideoFrames < 25 || res.DecodeErrors != "" {
			t.Errorf("relayed over SRT: %+v", res)
		}
	})
}
