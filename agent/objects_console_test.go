package agent_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// flowView is the part of GET /v1/flows/{id} these tests read.
type flowView struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Status *struct {
		Active  string `json:"active_source"`
		Sources []struct {
			Name    string `json:"name"`
			Bitrate int64  `json:"bitrate"`
			Cut     string `json:"cut"`
		} `json:"sources"`
		Outputs []struct {
			Name string `json:"name"`
			Push *struct {
				State string `json:"state"`
			} `json:"push"`
			BackupPush *struct {
				State string `json:"state"`
			} `json:"backup_push"`
		} `json:"outputs"`
	} `json:"status"`
}

// TestFlowMaxBandwidth: max_bandwidth takes the console's 10, 20 or 50
// Mbit/s and refuses other values with the list; a source publishing 16
// Mbit/s into a flow with max_bandwidth 10 Mbit/s is cut, its publisher
// disconnected, and the flow says why.
func TestFlowMaxBandwidth(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16 Mbit/s publisher for a few seconds")
	}
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, "")
	body := func(bw int64) map[string]any {
		return map[string]any{"id": "bw", "max_bandwidth": bw,
			"source":  map[string]any{"type": "rtmp-push", "stream": "live/big"},
			"outputs": []any{map[string]any{"name": "players", "type": "httpflv"}}}
	}
	var e struct {
		Code, Message, Field string
	}
	if st := send(t, "POST", a.api("/v1/flows"), body(15_000_000), &e); st != 400 || e.Field != "max_bandwidth" ||
		!strings.Contains(e.Message, "10, 20 or 50 Mbit/s") {
		t.Fatalf("max_bandwidth 15M: %d %+v, want 400 naming the choices", st, e)
	}
	var v flowView
	if st := send(t, "POST", a.api("/v1/flows"), body(10_000_000), &v); st != 201 {
		t.Fatalf("create: %d %+v", st, v)
	}
	if st := send(t, "POST", a.api("/v1/flows/bw/start"), nil, &v); st != 200 {
		t.Fatalf("start: %d", st)
	}
	src := testmedia.Source{Realtime: true, Duration: 30 * time.Second, Bitrate: "16M", CBR: true}.Defaults()
	pub := testmedia.Publish(t, context.Background(), src, a.rtmp("live/big"))
	testmedia.Eventually(t, 15*time.Second, "source cut for the flow's max_bandwidth", func() bool {
		v = flowView{}
		send(t, "GET", a.api("/v1/flows/bw"), nil, &v)
		return v.Status != nil && strings.Contains(v.Status.Sources[0].Cut, "over the flow's max_bandwidth 10000000")
	})
	if !strings.Contains(v.Reason, `source "primary": measured`) || !strings.Contains(v.Reason, "max_bandwidth 10000000") {
		t.Errorf("flow reason %q does not say the source was cut for max_bandwidth", v.Reason)
	}
	if b := v.Status.Sources[0].Bitrate; b < 12_000_000 {
		t.Errorf("measured %d bit/s of a 16 Mbit/s source", b)
	}
	if err := pub.Wait(10 * time.Second); err == nil {
		t.Errorf("the cut publisher exited cleanly, want it disconnected")
	} else if strings.Contains(err.Error(), "still running") {
		t.Errorf("the cut publisher was not disconnected: %v", err)
	}
}

// TestFlowBackupTunnels: an output with url and backup_url sends the
// primary source's media to url and the backup source's media to
// backup_url, each to its own destination server, while both sources are
// live; the flow's player output keeps serving the failover-merged stream
// (the active primary). Both RTMP (rtmp-push) and SRT (srt-caller)
// outputs; the two sources differ in picture size so each destination
// shows whose media it got.
func TestFlowBackupTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("two real-time publishers and two destination nodes")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	// the destination nodes are on loopback, which the fetch policy denies by default
	a := startAgent(t, "[objects]\nfetch_allow = [\"127.0.0.1/32\"]\n")
	d1, d2 := startAgent(t, ""), startAgent(t, "")
	srtURL := func(p *agentProc, key string) string {
		return fmt.Sprintf("srt://127.0.0.1:%d?streamid=publish:%s", p.ports["srt"], key)
	}
	body := map[string]any{"id": "tun",
		"source": map[string]any{"type": "rtmp-push", "stream": "live/main"},
		"backup": map[string]any{"type": "rtmp-push", "stream": "live/bak"},
		"outputs": []any{
			map[string]any{"name": "cdn", "type": "rtmp-push", "url": d1.rtmp("dst/cdn"), "backup_url": d2.rtmp("dst/cdn")},
			map[string]any{"name": "srt", "type": "srt-caller", "url": srtURL(d1, "dst/srt"), "backup_url": srtURL(d2, "dst/srt")},
			map[string]any{"name": "players", "type": "httpflv"},
		}}
	var v flowView
	if st := send(t, "POST", a.api("/v1/flows"), body, &v); st != 201 {
		t.Fatalf("create: %d %+v", st, v)
	}
	if st := send(t, "POST", a.api("/v1/flows/tun/start"), nil, &v); st != 200 {
		t.Fatalf("start: %d", st)
	}
	ctx := context.Background()
	main := testmedia.Source{Realtime: true, Audio: true, Duration: 30 * time.Second, Width: 640, Height: 360}.Defaults()
	bak := testmedia.Source{Realtime: true, Audio: true, Duration: 30 * time.Second, Width: 320, Height: 180}.Defaults()
	testmedia.Publish(t, ctx, main, a.rtmp("live/main"))
	testmedia.Publish(t, ctx, bak, a.rtmp("live/bak"))
	testmedia.Eventually(t, 15*time.Second, "all four tunnels running", func() bool {
		v = flowView{}
		send(t, "GET", a.api("/v1/flows/tun"), nil, &v)
		if v.Status == nil {
			return false
		}
		for _, o := range v.Status.Outputs[:2] {
			if o.Push == nil || o.Push.State != "running" || o.BackupPush == nil || o.BackupPush.State != "running" {
				return false
			}
		}
		return true
	})
	reads := []struct {
		name  string
		url   string
		width int
	}{
		{"rtmp url gets the primary", d1.flv("dst/cdn"), 640},
		{"rtmp backup_url gets the backup", d2.flv("dst/cdn"), 320},
		{"srt url gets the primary", d1.flv("dst/srt"), 640},
		{"srt backup_url gets the backup", d2.flv("dst/srt"), 320},
		{"player output gets the merged stream (primary active)", a.flv("flow/tun"), 640},
	}
	results := make([]testmedia.Result, len(reads))
	errs := make([]error, len(reads))
	var wg sync.WaitGroup
	for i, r := range reads {
		wg.Go(func() { results[i], errs[i] = testmedia.Read(ctx, r.url, 3*time.Second) })
	}
	wg.Wait()
	for i, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			res := results[i]
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if res.Width != r.width || res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.VideoFrames < 40 || res.DecodeErrors != "" {
				t.Errorf("%s: %+v, want h264 %d px wide + aac, >= 40 frames, no decode errors", r.url, res, r.width)
			}
		})
	}
	if v.Status.Active != "primary" {
		t.Errorf("active source %q, want primary", v.Status.Active)
	}
}
