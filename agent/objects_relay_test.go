package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/relay"
)

// TestRelayPushesMatchingStreams: a relay rule live/* -> this node's own
// RTMP ingest under another app pushes a published stream (through
// media/link, over the network) while its window is open; deleting the
// rule stops the push.
func TestRelayPushesMatchingStreams(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	o := startObjAgent(t, allowLoopback) // the relay pushes to this node's own ingest
	now := time.Now().UTC()
	ctx := context.Background()
	relays := o.client().Relays()
	spec := relay.Spec{ID: "out", Pattern: "live/*", URL: "rtmp://" + o.a.listenAddr("rtmp") + "/relayed/cam",
		Start: now.Add(-time.Minute), End: now.Add(time.Hour)}
	if v, err := relays.Create(ctx, spec); err != nil || v.State != lifecycle.Running {
		t.Fatalf("create: %+v, %v; want it running", v, err)
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
	rv, err := client.New(o.base).Relays().Get(ctx, "out") // reads need no token on loopback
	if err != nil {
		t.Fatalf("GET relay out: %v", err)
	}
	if rv.Pushes["live/cam"].State != link.StateRunning {
		t.Errorf("push status %+v, want live/cam running", rv.Pushes)
	}
	if err := relays.Delete(ctx, "out"); err != nil {
		t.Fatalf("delete: %v", err)
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
	ctx := context.Background()
	relays := o.client().Relays()
	rtmpAddr, srtAddr := o.a.listenAddr("rtmp"), o.a.listenAddr("srt")
	refused := []struct{ name, url, want string }{
		{"rtmp host:port only", "rtmp://" + rtmpAddr, "add them after the host, as in /live/STREAM-KEY"},
		{"rtmp app only", "rtmp://" + rtmpAddr + "/live", "names no app and stream"},
		{"srt without streamid", "srt://" + srtAddr, "add ?streamid=publish:app/name"},
		{"srt without port", "srt://127.0.0.1?streamid=publish:a/b", "has no port"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			spec := relay.Spec{ID: "bad", Pattern: "live/*", URL: c.url, Start: now.Add(-time.Minute), End: now.Add(time.Hour)}
			_, err := relays.Create(ctx, spec)
			if e := client.ProblemOf(err); e == nil || e.Status != 400 || e.Field != "url" || !strings.Contains(e.Message, c.want) {
				t.Fatalf("create: %v, want 400 on url saying %q", err, c.want)
			}
			if _, err := relays.Get(ctx, "bad"); !client.IsNotFound(err) {
				t.Errorf("refused relay kept: GET %v, want 404", err)
			}
		})
	}

	t.Run("rtmp stream to an srt destination", func(t *testing.T) {
		spec := relay.Spec{ID: "to-srt", Pattern: "live/*", URL: "srt://" + srtAddr + "?streamid=publish:remuxed/cam",
			Start: now.Add(-time.Minute), End: now.Add(time.Hour)}
		if _, err := relays.Create(ctx, spec); err != nil {
			t.Fatalf("create: %v", err)
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
