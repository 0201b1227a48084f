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

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/center"
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

// pullOf is node's on-demand pull of stream (ok false: none).
func (c *cluster) pullOf(node, stream string) (center.PullStatus, bool) {
	ctx, cancel := bounded()
	defer cancel()
	links, err := c.client(node).Links(ctx)
	if err != nil {
		return center.PullStatus{}, false
	}
	for _, p := range links.Pulls {
		if p.Stream == stream {
			return p, true
		}
	}
	return center.PullStatus{}, false
}

// TestClusterFlowAcrossRegions: the walkthrough of the README. FlowA
// (RTMP push in, RTMP pull out) and FlowA2 (SRT listener in and out) run
// on the edge esin in sin; FlowB and FlowB2 on the center fra (160 ms
// away) and FlowC on the center tyo (70 ms) take them by flow id and
// output name. The media crosses the SRT backbone (pulled on demand from
// sin, the center esin uplinks to), with the latency made from the
// measured RTT; players read every output on the destination nodes, and
// the destinations' push outputs deliver to a destination server.
func TestClusterFlowAcrossRegions(t *testing.T) {
	// fra's push outputs deliver to sin's listeners, on the lab's
	// private addresses (denied by default)
	allowLab := "[objects]\nfetch_allow = [\"10.77.0.0/24\"]\n"
	c := startClusterExtra(t, map[string]string{"fra": allowLab}, "fra", "sin", "tyo", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all := []string{"fra", "sin", "tyo", "esin"}
	testmedia.Eventually(t, 60*time.Second, "every node sees four alive members", func() bool {
		for _, n := range all {
			alive := 0
			for _, v := range c.nodes(n) {
				if v.State == "alive" {
					alive++
				}
			}
			if alive != len(all) {
				return false
			}
		}
		return true
	})
	// the backbone latency is made from the RTT: wait until it is known
	testmedia.Eventually(t, 60*time.Second, "fra and tyo to know their RTT to sin", func() bool {
		f, y := c.nodes("fra")["sin"], c.nodes("tyo")["sin"]
		return f.RTTMs != nil && *f.RTTMs > 100 && y.RTTMs != nil && *y.RTTMs > 40
	})
	// esin uplinks to the center nearest by its RTT estimates: sin
	testmedia.Eventually(t, 60*time.Second, "esin's RTT estimates to put sin before tyo and fra", func() bool {
		m := c.nodes("esin")
		s, y, f := m["sin"].RTTMs, m["tyo"].RTTMs, m["fra"].RTTMs
		return s != nil && y != nil && f != nil && *s < *y && *y < *f && *y > 40
	})
	key, err := auth.LoadKey(filepath.Join(c.dir, "auth.key"))
	if err != nil {
		t.Fatal(err)
	}
	// a destination server for the push outputs: sin's listeners
	dest := func(proto, stream string) string {
		tok := auth.Sign(key, auth.ActionPublish, stream, time.Now().Add(time.Hour))
		to := c.lab.Host("sin").Addr().String()
		if proto == "srt" {
			return "srt://" + to + ":8890?streamid=publish:" + stream + "?" + tok
		}
		return "rtmp://" + to + ":1935/" + stream + "?" + tok
	}
	fl := func(node string) client.Objects[flow.Spec, flow.View] { return c.client(node).Flows() }
	create := func(node string, s flow.Spec) flow.View {
		t.Helper()
		cctx, ccancel := bounded()
		defer ccancel()
		v, err := fl(node).Create(cctx, s)
		if err != nil {
			t.Fatalf("create %s on %s: %v", s.ID, node, err)
		}
		return v
	}

	// B first: A does not exist yet, which is a warning, not a refusal.
	b := flow.Spec{ID: "FlowB", Source: flow.Source{Type: flow.SrcFlow, Flow: "FlowA", Output: "FlowAOutput"},
		Outputs: []flow.Output{{Name: "rtmp", Type: flow.OutRTMPPull}, {Name: "web", Type: flow.OutHTTPFLV},
			{Name: "push", Type: flow.OutRTMPPush, URL: dest("rtmp", "live/fromB")}}}
	bv := create("fra", b)
	if w := strings.Join(bv.Warnings, "; "); !strings.Contains(w, `no node of the cluster has a flow "FlowA"`) {
		t.Errorf("FlowB's create answer warns %q, want FlowA not found", w)
	}
	a := flow.Spec{ID: "FlowA", Source: flow.Source{Type: flow.SrcRTMPPush},
		Outputs: []flow.Output{{Name: "FlowAOutput", Type: flow.OutRTMPPull}}}
	av := create("esin", a)
	testmedia.Eventually(t, 20*time.Second, "fra to see FlowA not started", func() bool {
		v, ok := c.flowView("fra", "FlowB")
		return ok && strings.Contains(strings.Join(v.Warnings, ";"), `flow "FlowA" on node esin is standby`)
	})
	a2 := flow.Spec{ID: "FlowA2", Source: flow.Source{Type: flow.SrcSRTListener, Stream: "live/a2"},
		Outputs: []flow.Output{{Name: "srtout", Type: flow.OutSRTListener}}}
	a2v := create("esin", a2)
	b2 := flow.Spec{ID: "FlowB2", Source: flow.Source{Type: flow.SrcFlow, Flow: "FlowA2", Output: "srtout", Node: "esin"},
		Outputs: []flow.Output{{Name: "srt", Type: flow.OutSRTListener}, {Name: "push", Type: flow.OutSRTCaller, URL: dest("srt", "live/fromB2")}}}
	create("fra", b2)
	// the other rows: A's flow output delivers into B's push source
	create("fra", flow.Spec{ID: "FlowB3", Source: flow.Source{Type: flow.SrcRTMPPush},
		Outputs: []flow.Output{{Name: "rtmp", Type: flow.OutRTMPPull}}})
	a3v := create("esin", flow.Spec{ID: "FlowA3", Source: flow.Source{Type: flow.SrcRTMPPush},
		Outputs: []flow.Output{{Name: "toB3", Type: flow.OutFlow, Flow: "FlowB3"}}})
	a4v := create("esin", flow.Spec{ID: "FlowA4", Source: flow.Source{Type: flow.SrcSRTListener, Stream: "live/a4"},
		Outputs: []flow.Output{{Name: "toB4", Type: flow.OutFlow, Flow: "FlowB4", Node: "fra"}}})
	if w := strings.Join(a4v.Warnings, "; "); !strings.Contains(w, `output "toB4": no node of the cluster has a flow "FlowB4"`) {
		t.Errorf("FlowA4's create answer warns %q, want FlowB4 not found", w)
	}
	create("fra", flow.Spec{ID: "FlowB4", Source: flow.Source{Type: flow.SrcSRTListener, Stream: "live/b4"},
		Outputs: []flow.Output{{Name: "srt", Type: flow.OutSRTListener}}})
	cf := flow.Spec{ID: "FlowC", Source: flow.Source{Type: flow.SrcFlow, Flow: "FlowA", Output: "FlowAOutput"},
		Outputs: []flow.Output{{Name: "rtmp", Type: flow.OutRTMPPull}}}
	create("tyo", cf)
	for _, s := range []struct{ node, id string }{{"fra", "FlowB"}, {"fra", "FlowB2"}, {"tyo", "FlowC"}, {"esin", "FlowA"}, {"esin", "FlowA2"},
		{"fra", "FlowB3"}, {"fra", "FlowB4"}, {"esin", "FlowA3"}, {"esin", "FlowA4"}} {
		cctx, ccancel := bounded()
		if _, err := fl(s.node).Do(cctx, s.id, "start"); err != nil {
			t.Fatalf("start %s on %s: %v", s.id, s.node, err)
		}
		ccancel()
	}
	if av.URLs == nil || a2v.URLs == nil {
		t.Fatalf("FlowA's or FlowA2's answer has no URLs: %+v %+v", av.URLs, a2v.URLs)
	}
	esin := c.lab.Host("esin").Addr().String()
	pushURL := urlOf(t, av.URLs.Sources, "primary", "rtmp")
	if want := "rtmp://" + esin + ":1935/flowsrc/FlowA.primary?token="; !strings.HasPrefix(pushURL, want) {
		t.Errorf("FlowA's source URL %q, want it on esin's advertised RTMP address and signed (%s...)", pushURL, want)
	}
	pushSRT := urlOf(t, a2v.URLs.Sources, "primary", "srt")
	if want := "srt://" + esin + ":8890?streamid=publish:live/a2?token="; !strings.HasPrefix(pushSRT, want) {
		t.Errorf("FlowA2's source URL %q, want it on esin's advertised SRT address and signed (%s...)", pushSRT, want)
	}
	bv, _ = c.flowView("fra", "FlowB")
	b2v, _ := c.flowView("fra", "FlowB2")
	cv, _ := c.flowView("tyo", "FlowC")
	if bv.URLs == nil || b2v.URLs == nil || cv.URLs == nil {
		t.Fatal("a destination flow's answer has no output URLs")
	}
	rtmpOut, webOut := urlOf(t, bv.URLs.Outputs, "rtmp", "rtmp"), urlOf(t, bv.URLs.Outputs, "web", "http-flv")
	srtOut, cOut := urlOf(t, b2v.URLs.Outputs, "srt", "srt"), urlOf(t, cv.URLs.Outputs, "rtmp", "rtmp")
	t.Logf("push to %s and %s; play %s, %s, %s, %s", pushURL, pushSRT, rtmpOut, webOut, srtOut, cOut)

	b3v, _ := c.flowView("fra", "FlowB3")
	b4v, _ := c.flowView("fra", "FlowB4")
	if b3v.URLs == nil || b4v.URLs == nil {
		t.Fatal("FlowB3's or FlowB4's answer has no URLs")
	}
	b3Out, b4Out := urlOf(t, b3v.URLs.Outputs, "rtmp", "rtmp"), urlOf(t, b4v.URLs.Outputs, "srt", "srt")

	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true}
	pub, _ := c.publish(ctx, "esin", src, pushURL)
	c.publish(ctx, "esin", src, pushSRT)
	c.publish(ctx, "esin", src, urlOf(t, a3v.URLs.Sources, "primary", "rtmp"))
	c.publish(ctx, "esin", src, urlOf(t, a4v.URLs.Sources, "primary", "srt"))
	fraBackbone := c.lab.Host("fra").Addr().String() + ":9710"
	for _, d := range []struct{ id, out string }{{"FlowA3", "toB3"}, {"FlowA4", "toB4"}} {
		testmedia.Eventually(t, 40*time.Second, d.id+"'s flow output to deliver over fra's backbone", func() bool {
			v, ok := c.flowView("esin", d.id)
			if !ok || v.Status == nil {
				return false
			}
			for _, o := range v.Status.Outputs {
				if o.Name == d.out && o.Push != nil && o.Push.State == "running" && strings.Contains(o.Push.Target, fraBackbone) {
					return true
				}
			}
			return false
		})
	}
	for _, d := range []struct{ node, id, from string }{{"fra", "FlowB", "esin"}, {"fra", "FlowB2", "esin"}, {"tyo", "FlowC", "esin"}} {
		testmedia.Eventually(t, 40*time.Second, d.id+"'s source to be connected", func() bool {
			r, ok := c.flowRef(d.node, d.id)
			return ok && r.State == flow.RefConnected && r.Node == d.from
		})
	}

	t.Run("play", func(t *testing.T) {
		reads := []struct{ node, url, out string }{
			{"fra", rtmpOut, "b-rtmp.nut"}, // A rtmp-push -> rtmp-pull -> B flow -> rtmp-pull
			{"sin", "rtmp://" + c.lab.Host("sin").Addr().String() + ":1935/live/fromB", "b-push.nut"}, // ... -> B rtmp-push
			{"fra", srtOut, "b2-srt.ts"}, // A2 srt-listener -> srt-listener -> B2 flow -> srt-listener
			{"sin", "rtmp://" + c.lab.Host("sin").Addr().String() + ":1935/live/fromB2", "b2-push.nut"}, // ... -> B2 srt-caller
			{"tyo", cOut, "c-rtmp.nut"},   // the same A, a second destination region
			{"fra", b3Out, "b3-rtmp.nut"}, // A3 rtmp-push -> flow output -> B3 rtmp-push -> rtmp-pull
			{"fra", b4Out, "b4-srt.ts"},   // A4 srt-listener -> flow output -> B4 srt-listener -> srt-listener
		}
		for _, r := range reads {
			res, _ := c.readOn(t, ctx, r.node, r.url, 40*time.Second, "4", filepath.Join(c.dir, r.out))
			t.Logf("%s on %s: %+v", r.url, r.node, res)
			if res.VideoCodec != "h264" || res.AudioCodec != "aac" {
				t.Errorf("%s: codecs %q/%q, want h264/aac", r.url, res.VideoCodec, res.AudioCodec)
			}
			if res.VideoFrames < 80 {
				t.Errorf("%s: %d video frames in 4 s, want at least 80 (25 fps)", r.url, res.VideoFrames)
			}
			if res.DecodeErrors != "" {
				t.Errorf("%s: decode errors: %s", r.url, res.DecodeErrors)
			}
		}
		// each destination node pulls FlowA's stream over its own
		// backbone link, with the latency made from its RTT to sin
		for _, n := range []struct {
			node string
			min  uint64
		}{{"fra", 4 * 150}, {"tyo", 4 * 60}} {
			p, ok := c.pullOf(n.node, "flow/FlowA")
			if !ok || p.Link.SRT == nil {
				t.Errorf("%s has no backbone pull of flow/FlowA: %s", n.node, c.rawAPI(n.node, "/v1/links"))
				continue
			}
			t.Logf("%s pulls flow/FlowA from %s: %d packets (%d wire bytes), SRT latency %d ms, RTT %.0f ms, encrypted %v, reconnects %d",
				n.node, p.From, p.Link.SRT.PacketsRecv, p.Link.SRT.WireBytes, p.Link.SRT.LatencyMs, p.Link.SRT.RTTMs, p.Link.SRT.Encrypted, p.Link.Reconnects)
			if p.From != "sin" || p.Link.SRT.PacketsRecv == 0 || p.Link.SRT.LatencyMs < n.min || !p.Link.SRT.Encrypted || p.Link.Reconnects > 0 {
				t.Errorf("%s's pull of flow/FlowA: from %s, %d packets, latency %d ms, encrypted %v, %d reconnects; want from sin, packets, at least %d ms (4x RTT), encrypted (backbone key), no reconnects",
					n.node, p.From, p.Link.SRT.PacketsRecv, p.Link.SRT.LatencyMs, p.Link.SRT.Encrypted, p.Link.Reconnects, n.min)
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
		if !errors.As(err, &p) || p.Status != http.StatusConflict || !strings.Contains(p.Message, "FlowB (node fra)") || !strings.Contains(p.Message, "FlowC (node tyo)") {
			t.Errorf("renaming FlowA's output FlowB and FlowC take: %v, want 409 naming FlowB (node fra) and FlowC (node tyo)", err)
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
		// FlowB3, which FlowA3's flow output (on esin) delivers into:
		// neither it nor its push source can go
		if _, err := fl("fra").Do(cctx, "FlowB3", "stop"); err != nil {
			t.Fatal(err)
		}
		deliverer := `output "toB3" of flow FlowA3 (node esin)`
		err = fl("fra").Delete(cctx, "FlowB3")
		if !errors.As(err, &p) || p.Status != http.StatusConflict || !strings.Contains(p.Message, deliverer) {
			t.Errorf("deleting FlowB3: %v, want 409 naming %s", err, deliverer)
		}
		b3 := flow.Spec{ID: "FlowB3", Source: flow.Source{Name: "main", Type: flow.SrcRTMPPush},
			Outputs: []flow.Output{{Name: "rtmp", Type: flow.OutRTMPPull}}}
		_, err = fl("fra").Update(cctx, "FlowB3", b3)
		if !errors.As(err, &p) || p.Status != http.StatusConflict || !strings.Contains(p.Message, `source "primary" of flow "FlowB3"`) || !strings.Contains(p.Message, deliverer) {
			t.Errorf("renaming FlowB3's push source: %v, want 409 naming %s", err, deliverer)
		}
		if _, err := fl("fra").Do(cctx, "FlowB3", "start"); err != nil {
			t.Fatal(err)
		}
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
		var silent flow.Resolution
		testmedia.Eventually(t, 20*time.Second, "FlowB's source to report no media", func() bool {
			r, ok := c.flowRef("fra", "FlowB")
			silent = r
			// waiting (no media) at once; not_found once gossip declares
			// esin dead, which may come first on a loaded machine
			return ok && (r.State == flow.RefWaiting || r.State == flow.RefNotFound) && r.Reason != ""
		})
		t.Logf("FlowB's source %s after esin died: %+v", time.Since(killed).Round(100*time.Millisecond), silent)
		var gone flow.Resolution
		testmedia.Eventually(t, 60*time.Second, "FlowB's source to report FlowA gone with its node", func() bool {
			r, ok := c.flowRef("fra", "FlowB")
			gone = r
			return ok && r.State == flow.RefNotFound
		})
		t.Logf("FlowB's source %s after esin died: %+v", time.Since(killed).Round(100*time.Millisecond), gone)
		if v, _ := c.flowView("fra", "FlowB"); v.State != "running" || !strings.Contains(v.Reason, `no node of the cluster has a flow "FlowA"`) {
			t.Errorf("FlowB is %s with reason %q, want running with its source's reason", v.State, v.Reason)
		}
		c.start(siteNamed(t, "esin"), c.seeds["esin"], filepath.Join(c.dir, "gossip.key"))
		var av flow.View
		testmedia.Eventually(t, 40*time.Second, "FlowA running again on esin", func() bool {
			v, ok := c.flowView("esin", "FlowA")
			av = v
			return ok && v.State == "running"
		})
		restarted := time.Now()
		_, stderr := c.publish(ctx, "esin", src, urlOf(t, av.URLs.Sources, "primary", "rtmp"))
		if !resumed(player, restarted, 60*time.Second) {
			t.Fatalf("FlowB's player got no frames after esin came back; FlowB: %s; ffmpeg: %s", c.rawAPI("fra", "/v1/flows/FlowB"), stderr)
		}
		t.Logf("FlowB's player resumed by itself %s after esin restarted", time.Since(restarted).Round(100*time.Millisecond))
		testmedia.Eventually(t, 10*time.Second, "FlowB's source connected", func() bool {
			r, ok := c.flowRef("fra", "FlowB")
			return ok && r.State == flow.RefConnected
		})
		res, _ := c.readOn(t, ctx, "fra", rtmpOut, 40*time.Second, "4", filepath.Join(c.dir, "b-after.nut"))
		if res.VideoCodec != "h264" || res.VideoFrames < 80 || res.DecodeErrors != "" {
			t.Errorf("FlowB after the restart: %+v, want 4 s of h264 without decode errors", res)
		}
	})
}
