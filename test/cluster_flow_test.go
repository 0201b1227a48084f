package test

// Flows across regions (issue 13 §1): Flow A on the edge esin (sin) takes
// a broadcaster's push; Flow B on the center fra (160 ms from sin) has a
// source of type flow naming A and one of its outputs. The media goes
// from sin to fra over the SRT backbone, and players read B's outputs on
// fra.

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// flowView is node's flow id (ok false when it does not answer).
func (c *cluster) flowView(node, id string) (flow.View, bool) {
	ctx, cancel := bounded()
	defer cancel()
	v, err := c.client(node).Flows().Get(ctx, id)
	return v, err == nil
}

// flowRef is what flow id's source resolved to on node, "" when unknown.
func (c *cluster) flowRef(node, id string) (flow.Resolution, bool) {
	v, ok := c.flowView(node, id)
	if !ok || v.Status == nil || len(v.Status.Sources) == 0 || v.Status.Sources[0].Ref == nil {
		return flow.Resolution{}, false
	}
	return *v.Status.Sources[0].Ref, true
}

// urlOf is the URL named name in urls, of protocol proto.
func urlOf(t *testing.T, urls []flow.URL, name, proto string) string {
	t.Helper()
	for _, u := range urls {
		if u.Name == name && u.Protocol == proto {
			return u.URL
		}
	}
	t.Fatalf("no %s URL named %q in %+v", proto, name, urls)
	return ""
}

func TestClusterFlowAcrossRegions(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testmedia.Eventually(t, 60*time.Second, "every node sees three alive members", func() bool {
		for _, n := range []string{"fra", "sin", "esin"} {
			alive := 0
			for _, v := range c.nodes(n) {
				if v.State == "alive" {
					alive++
				}
			}
			if alive != 3 {
				return false
			}
		}
		return true
	})
	fl := func(node string) client.Objects[flow.Spec, flow.View] { return c.client(node).Flows() }

	// B first: A does not exist yet, which is a warning, not a refusal.
	b := flow.Spec{ID: "FlowB", Source: flow.Source{Type: flow.SrcFlow, Flow: "FlowA", Output: "FlowAOutput"},
		Outputs: []flow.Output{{Name: "rtmp", Type: flow.OutRTMPPull}, {Name: "srt", Type: flow.OutSRTListener}, {Name: "web", Type: flow.OutHTTPFLV}}}
	cctx, ccancel := bounded()
	bv, err := fl("fra").Create(cctx, b)
	ccancel()
	if err != nil {
		t.Fatalf("create FlowB on fra before FlowA exists: %v", err)
	}
	if w := strings.Join(bv.Warnings, "; "); !strings.Contains(w, `no node of the cluster has a flow "FlowA"`) {
		t.Errorf("FlowB's create answer warns %q, want FlowA not found", w)
	}
	a := flow.Spec{ID: "FlowA", Source: flow.Source{Type: flow.SrcRTMPPush},
		Outputs: []flow.Output{{Name: "FlowAOutput", Type: flow.OutRTMPPull}}}
	cctx, ccancel = bounded()
	av, err := fl("esin").Create(cctx, a)
	ccancel()
	if err != nil {
		t.Fatalf("create FlowA on esin: %v", err)
	}
	testmedia.Eventually(t, 20*time.Second, "fra to see FlowA not started", func() bool {
		v, ok := c.flowView("fra", "FlowB")
		return ok && strings.Contains(strings.Join(v.Warnings, ";"), `flow "FlowA" on node esin is standby`)
	})
	for _, s := range []struct{ node, id string }{{"fra", "FlowB"}, {"esin", "FlowA"}} {
		cctx, ccancel := bounded()
		if _, err := fl(s.node).Do(cctx, s.id, "start"); err != nil {
			t.Fatalf("start %s on %s: %v", s.id, s.node, err)
		}
		ccancel()
	}
	if av.URLs == nil || len(av.URLs.Sources) == 0 {
		t.Fatalf("FlowA's answer has no source URLs: %+v", av.URLs)
	}
	pushURL := urlOf(t, av.URLs.Sources, "primary", "rtmp")
	if want := "rtmp://" + c.lab.Host("esin").Addr().String() + ":1935/flowsrc/FlowA.primary?"; !strings.HasPrefix(pushURL, want) {
		t.Errorf("FlowA's source URL %q, want it on esin's advertised RTMP address and signed (%s...)", pushURL, want)
	}
	bv, _ = c.flowView("fra", "FlowB")
	if bv.URLs == nil {
		t.Fatal("FlowB's answer has no output URLs")
	}
	rtmpOut, srtOut, webOut := urlOf(t, bv.URLs.Outputs, "rtmp", "rtmp"), urlOf(t, bv.URLs.Outputs, "srt", "srt"), urlOf(t, bv.URLs.Outputs, "web", "http-flv")
	t.Logf("push to %s; play %s, %s, %s", pushURL, rtmpOut, srtOut, webOut)

	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true}
	pub, stderr := c.publish(ctx, "esin", src, pushURL)
	testmedia.Eventually(t, 40*time.Second, "FlowB's source to be connected to FlowA", func() bool {
		r, ok := c.flowRef("fra", "FlowB")
		return ok && r.State == flow.RefConnected && r.Node == "esin"
	})
	links := c.rawAPI("fra", "/v1/links")
	t.Logf("fra's links: %s", links)
	if !strings.Contains(links, "flow/FlowA") {
		t.Errorf("fra's links show no backbone link carrying flow/FlowA: %s", links)
	}

	t.Run("play_rtmp_and_srt", func(t *testing.T) {
		for _, u := range []struct{ url, out string }{{rtmpOut, "b-rtmp.nut"}, {srtOut, "b-srt.ts"}} {
			res, _ := c.readOn(t, ctx, "fra", u.url, 40*time.Second, "5", filepath.Join(c.dir, u.out))
			t.Logf("%s: %+v", u.url, res)
			if res.VideoCodec != "h264" || res.AudioCodec != "aac" {
				t.Errorf("%s: codecs %q/%q, want h264/aac", u.url, res.VideoCodec, res.AudioCodec)
			}
			if res.VideoFrames < 100 {
				t.Errorf("%s: %d video frames in 5 s, want at least 100 (25 fps)", u.url, res.VideoFrames)
			}
			if res.DecodeErrors != "" {
				t.Errorf("%s: decode errors: %s", u.url, res.DecodeErrors)
			}
		}
	})

	t.Run("output_in_use", func(t *testing.T) {
		renamed := a
		renamed.Outputs = []flow.Output{{Name: "Renamed", Type: flow.OutRTMPPull}}
		// a running flow's outputs cannot change anyway: stop it, try,
		// and start it again
		cctx, ccancel := bounded()
		defer ccancel()
		if _, err := fl("esin").Do(cctx, "FlowA", "stop"); err != nil {
			t.Fatal(err)
		}
		_, err := fl("esin").Update(cctx, "FlowA", renamed)
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != http.StatusConflict || !strings.Contains(p.Message, "FlowB (node fra)") {
			t.Errorf("renaming FlowA's output FlowB takes: %v, want 409 naming FlowB (node fra)", err)
		}
		err = fl("esin").Delete(cctx, "FlowA")
		if !errors.As(err, &p) || p.Status != http.StatusConflict || !strings.Contains(p.Message, "FlowB (node fra)") {
			t.Errorf("deleting FlowA: %v, want 409 naming FlowB (node fra)", err)
		}
		testmedia.Eventually(t, 20*time.Second, "FlowB's source to say FlowA is not started", func() bool {
			r, ok := c.flowRef("fra", "FlowB")
			return ok && r.State == flow.RefNotStarted
		})
		if _, err := fl("esin").Do(cctx, "FlowA", "start"); err != nil {
			t.Fatal(err)
		}
		testmedia.Eventually(t, 40*time.Second, "FlowB's source connected again", func() bool {
			r, ok := c.flowRef("fra", "FlowB")
			return ok && r.State == flow.RefConnected
		})
	})

	t.Run("source_node_restarts", func(t *testing.T) {
		player := c.play(ctx, "fra", webOut)
		if !resumed(player, time.Now(), 30*time.Second) {
			t.Fatalf("FlowB's HTTP-FLV output plays no frames: %v", player.err)
		}
		c.procs["esin"].Process.Kill()
		<-c.exited["esin"]
		pub.Process.Kill()
		killed := time.Now()
		var down flow.Resolution
		testmedia.Eventually(t, 40*time.Second, "FlowB's source to report FlowA down", func() bool {
			r, ok := c.flowRef("fra", "FlowB")
			down = r
			return ok && r.State != flow.RefConnected && r.Reason != ""
		})
		t.Logf("FlowB's source after esin died (%s later): %+v", time.Since(killed).Round(time.Second), down)
		c.start(siteNamed(t, "esin"), c.seeds["esin"], filepath.Join(c.dir, "gossip.key"))
		var av flow.View
		testmedia.Eventually(t, 40*time.Second, "FlowA running again on esin", func() bool {
			v, ok := c.flowView("esin", "FlowA")
			av = v
			return ok && v.State == "running"
		})
		restarted := time.Now()
		pub2, stderr2 := c.publish(ctx, "esin", src, urlOf(t, av.URLs.Sources, "primary", "rtmp"))
		if !resumed(player, restarted, 60*time.Second) {
			t.Fatalf("FlowB's player got no frames after esin came back; FlowB: %s; ffmpeg: %s", c.rawAPI("fra", "/v1/flows/FlowB"), stderr2)
		}
		t.Logf("FlowB resumed by itself %s after esin restarted", time.Since(restarted).Round(100*time.Millisecond))
		r, _ := c.flowRef("fra", "FlowB")
		if r.State != flow.RefConnected {
			t.Errorf("FlowB's source is %+v while frames arrive, want connected", r)
		}
		_ = pub2
	})
	_ = stderr
}
