package test

// Cluster tests of the moments a stream or a node moves: a center that
// just (re)started, a pull whose source center is abandoned, a takeover
// through another edge, a drained center. Small topologies (2-3 centers,
// one edge) to stay light on CI.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
	"github.com/relaymesh/relaymesh/test/netlab"
)

func siteNamed(t *testing.T, name string) site {
	t.Helper()
	i := slices.IndexFunc(clusterSites, func(s site) bool { return s.name == name })
	if i < 0 {
		t.Fatalf("no site %q", name)
	}
	return clusterSites[i]
}

// stop signals a node and waits (bounded) for its process to exit.
func (c *cluster) stop(name string, sig syscall.Signal) {
	c.t.Helper()
	if err := c.procs[name].Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-c.exited[name]:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not exit within 30 s of %s", name, sig)
	}
}

// restart starts a stopped node again with its config and seeds.
func (c *cluster) restart(name string) {
	c.start(siteNamed(c.t, name), c.seeds[name], filepath.Join(c.dir, "gossip.key"))
}

// waitPort polls until node's TCP port accepts a connection: the first
// moment a client could reach it.
func (c *cluster) waitPort(node string, port uint16) {
	c.t.Helper()
	addr := c.lab.Host(node).AddrPort(port).String()
	testmedia.Eventually(c.t, 30*time.Second, node+" accepts on "+addr, func() bool {
		conn, err := c.lab.Host(node).DialContext(context.Background(), "tcp4", addr)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// converged waits until every named node sees all of them alive.
func (c *cluster) converged(names ...string) {
	c.t.Helper()
	testmedia.Eventually(c.t, 30*time.Second, "every node sees the others alive", func() bool {
		for _, n := range names {
			m := c.nodes(n)
			for _, o := range names {
				if m[o].State != "alive" {
					return false
				}
			}
		}
		return true
	})
}

// rttOrdered waits until node's RTT estimates order the centers as given,
// nearest first.
func (c *cluster) rttOrdered(node string, centers ...string) {
	c.t.Helper()
	testmedia.Eventually(c.t, 60*time.Second, node+"'s RTT estimates order "+strings.Join(centers, " < "), func() bool {
		m := c.nodes(node)
		prev := -1.0
		for _, n := range centers {
			r := m[n].RTTMs
			if r == nil || *r <= prev {
				return false
			}
			prev = *r
		}
		return true
	})
}

// publishVia asks edge's locate for the signed URL of stream (app live)
// and publishes src there with ffmpeg.
func (c *cluster) publishVia(ctx context.Context, edge, name string, src testmedia.Source) *exec.Cmd {
	return c.publishFrom(ctx, edge, singaporeIP, name, src)
}

// publishFrom publishes from edge's namespace to the edge locate names
// for a client at client.
func (c *cluster) publishFrom(ctx context.Context, edge, client, name string, src testmedia.Source) *exec.Cmd {
	c.t.Helper()
	var loc struct {
		Edge struct{ Node, RTMP string } `json:"edge"`
	}
	if err := c.api(edge, "/v1/locate?app=live&stream="+name+"&client="+client, &loc); err != nil {
		c.t.Fatal(err)
	}
	if loc.Edge.Node != edge {
		c.t.Fatalf("locate for %s names %s, want %s", client, loc.Edge.Node, edge)
	}
	cmd, _ := c.publish(ctx, edge, src, loc.Edge.RTMP)
	return cmd
}

func (c *cluster) flvURL(node, stream string) string {
	return "http://" + c.lab.Host(node).AddrPort(8080).String() + "/" + stream + ".flv"
}

// uplinkRunsOn waits until edge's uplink of stream runs to center.
func (c *cluster) uplinkRunsOn(edge, stream, center string, d time.Duration) {
	c.t.Helper()
	testmedia.Eventually(c.t, d, edge+"'s uplink of "+stream+" runs to "+center, func() bool {
		u, ok := c.uplink(edge, stream)
		return ok && u.Center == center && u.Relay.State == "running"
	})
}

// playOn starts an HTTP-FLV player of stream on each node and waits
// until every one received 100 frames.
func (c *cluster) playOn(ctx context.Context, stream string, nodes ...string) map[string]*flvPlayer {
	c.t.Helper()
	players := map[string]*flvPlayer{}
	for _, n := range nodes {
		players[n] = c.play(ctx, n, c.flvURL(n, stream))
	}
	testmedia.Eventually(c.t, 30*time.Second, "every player receives 100 frames", func() bool {
		for _, p := range players {
			if p.frames() < 100 {
				return false
			}
		}
		return true
	})
	return players
}

// checkMonotonic waits for the (cancelled) player to end, then probes
// what it recorded: video DTS must only increase.
func checkMonotonic(t *testing.T, p *flvPlayer, node, when string) {
	t.Helper()
	<-p.done
	res, err := testmedia.Analyze(context.Background(), p.recorded(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("what %s played: %d video frames, %d non-monotonic DTS %q", node, res.VideoFrames, res.NonMonotonic, p.backSteps())
	if res.NonMonotonic != 0 {
		t.Errorf("what %s played has %d non-monotonic video DTS %s", node, res.NonMonotonic, when)
	}
}

// TestClusterPlayRightAfterStart is defect 4 of issue 14: a player that
// reaches a center at the first moment it accepts connections after a
// restart plays a stream another center hosts (the center waits for its
// directory's first sync inside the play wait instead of answering "not
// found").
func TestClusterPlayRightAfterStart(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("fra", "sin", "esin")
	c.rttOrdered("esin", "sin", "fra")
	const stream = "live/restart"
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	c.publishVia(ctx, "esin", "restart", src)
	testmedia.Eventually(t, 20*time.Second, "fra's directory names sin for "+stream, func() bool { return c.host("fra", stream) == "sin" })

	for round := range 2 {
		c.stop("fra", syscall.SIGTERM)
		c.restart("fra")
		c.waitPort("fra", 8080)
		start := time.Now()
		p := c.play(ctx, "fra", c.flvURL("fra", stream))
		testmedia.Eventually(t, 30*time.Second, "the player on the restarted fra ends or gets 50 frames", func() bool {
			select {
			case <-p.done:
				return true
			default:
			}
			return p.frames() >= 50
		})
		if p.frames() < 50 {
			t.Fatalf("round %d: the player on fra right after its restart got %d frames: %v", round, p.frames(), p.err)
		}
		p.mu.Lock()
		first := p.video[0]
		p.mu.Unlock()
		t.Logf("round %d: play request at fra's first accept: first frame after %s", round, first.Sub(start).Round(10*time.Millisecond))
	}
}

// TestClusterPullFollowsDirectory is defect 2 of issue 14: the hosting
// center stays alive but the edge can no longer reach it (a backbone-only
// block), so the edge moves the uplink to another center. A center
// pulling the stream for its player moves its pull to the new host as
// soon as the directory names it, make-before-break, instead of staying
// on the old host until "source sent nothing for 5s".
func TestClusterPullFollowsDirectory(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "tyo", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("fra", "sin", "tyo", "esin")
	c.rttOrdered("esin", "sin", "tyo", "fra")
	const stream = "live/follow"
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	c.publishVia(ctx, "esin", "follow", src)
	testmedia.Eventually(t, 20*time.Second, "fra's directory names sin for "+stream, func() bool { return c.host("fra", stream) == "sin" })
	player := c.play(ctx, "fra", c.flvURL("fra", stream))
	testmedia.Eventually(t, 20*time.Second, "the player on fra receives 100 frames", func() bool { return player.frames() >= 100 })
	// and an SRT player on fra that keeps the TS as it comes: its
	// continuity counters and DTS stay continuous across the pull's move
	// (issue 14 saw a duplicate DTS at every pull switch and a
	// continuity-counter jump at a splice)
	tsOut := filepath.Join(c.dir, "fra-follow.ts")
	tsCtx, tsStop := context.WithCancel(ctx)
	ts, err := c.captureTS(tsCtx, "fra", "srt://"+c.lab.Host("fra").AddrPort(8890).String()+"?streamid=read:"+stream, tsOut)
	if err != nil {
		t.Fatal(err)
	}
	testmedia.Eventually(t, 20*time.Second, "the SRT player on fra receives TS", func() bool { return fileSize(tsOut) > 0 })

	// esin <-> sin only: sin stays alive for the other centers
	if err := c.lab.SetLink("esin", "sin", netlab.Impairment{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	testmedia.Eventually(t, 30*time.Second, "fra's directory names tyo", func() bool { return c.host("fra", stream) == "tyo" })
	named := time.Since(cut)
	testmedia.Eventually(t, 30*time.Second, "fra's pull reads from tyo", func() bool {
		actx, acancel := bounded()
		defer acancel()
		links, err := c.client("fra").Links(actx)
		return err == nil && len(links.Pulls) == 1 && links.Pulls[0].From == "tyo"
	})
	if !resumed(player, cut.Add(named), 30*time.Second) {
		t.Fatalf("the player on fra did not resume after the stream moved to tyo: %v", player.err)
	}
	moved := fileSize(tsOut) // the TS up to the pull's move
	b, _ := os.ReadFile(c.logs["fra"])
	if !bytes.Contains(b, []byte("on-demand pull follows the directory")) {
		t.Errorf("fra's pull did not move when the directory named tyo")
	}
	// (here the edge needs a few seconds to give up on sin, so sin falls
	// silent at about the moment the directory names tyo; the old pull's
	// own "source sent nothing" may race the move and is not an error)
	t.Logf("backbone-only block of esin-sin: directory at fra named tyo after %s; longest gap the player on fra saw: %s",
		named.Round(10*time.Millisecond), player.maxGap(cut).Round(10*time.Millisecond))
	// a few seconds of the new host's stream in the TS too
	testmedia.Eventually(t, 20*time.Second, "the player on fra receives 100 frames more", func() bool { return player.framesSince(cut.Add(named)) >= 100 })
	if now := fileSize(tsOut); now <= moved {
		t.Fatalf("the SRT player on fra got no TS after the pull's move (%d bytes before it, %d now)", moved, now)
	}
	tsStop()
	_ = ts.Wait()
	st, err := tsContinuity(tsOut)
	if err != nil {
		t.Fatalf("the SRT player's TS on fra: %v", err)
	}
	res, err := testmedia.Analyze(context.Background(), tsOut)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the SRT player's TS on fra across the move: %d bytes, %d TS continuity errors, %d non-monotonic video DTS (%d frames)", st.Bytes, st.CCErrors, res.NonMonotonic, res.VideoFrames)
	if st.CCErrors != 0 || res.NonMonotonic != 0 {
		t.Errorf("the SRT player's TS on fra across the pull's move: %d continuity errors, %d non-monotonic video DTS", st.CCErrors, res.NonMonotonic)
	}
	cancel()
	checkMonotonic(t, player, "fra", "across the pull's move")
}

// captureTS records what an SRT player reading url on node gets, as it
// comes (srt-live-transmit: no remux, so the TS keeps its continuity
// counters), until ctx ends.
func (c *cluster) captureTS(ctx context.Context, node, url, out string) (*exec.Cmd, error) {
	cmd := c.lab.Host(node).Command(ctx, "srt-live-transmit", "-q", url, "file://con")
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("srt-live-transmit on %s: %w", node, err)
	}
	return cmd, nil
}

// fileSize is the size of the file at path, 0 when it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tsStats is what tsContinuity found.
type tsStats struct {
	Bytes    int64
	CCErrors uint64
}

// tsContinuity counts the continuity-counter errors of a TS file (a gap
// flagged by the discontinuity indicator is none), by the demuxer the
// SRT publisher counts them with.
func tsContinuity(path string) (tsStats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tsStats{}, err
	}
	dm := mpegts.NewDemuxer()
	if err := dm.Feed(b, func(*unit.Packet) {}); err != nil {
		return tsStats{}, err
	}
	return tsStats{Bytes: int64(len(b)), CCErrors: dm.Stats().CCErrors}, nil
}

// TestClusterTakeoverViaOtherEdge is defect 3 of issue 14: the
// broadcaster's edge dies and it republishes the same key through
// another edge, whose uplink reaches the same hosting center (a route
// keeps the stream on sin). The player on a center pulling the stream
// sees one monotonic timeline although the new encoder's clock starts
// again near 0.
func TestClusterTakeoverViaOtherEdge(t *testing.T) {
	c := startClusterWith(t, "sin", "fra", "esin", "efra")
	route := "\n[[route]]\npattern = \"live/*\"\nsites = [\"sin\"]\nstrict = true\n"
	// the edges started already: restart them with the route
	for _, e := range []string{"esin", "efra"} {
		c.stop(e, syscall.SIGTERM)
		c.extra[e] = route
		c.restart(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("sin", "fra", "esin", "efra")
	const stream = "live/take"
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	pub := c.publishVia(ctx, "esin", "take", src)
	testmedia.Eventually(t, 20*time.Second, "fra's directory names sin for "+stream, func() bool { return c.host("fra", stream) == "sin" })
	player := c.play(ctx, "fra", c.flvURL("fra", stream))
	// 10 s in, so the new encoder's clock (near 0) is far behind
	testmedia.Eventually(t, 30*time.Second, "the player on fra receives 250 frames", func() bool { return player.frames() >= 250 })

	c.stop("esin", syscall.SIGKILL)
	pub.Process.Kill()
	cut := time.Now()
	c.publishFrom(ctx, "efra", "192.0.2.7", "take", src)
	if !resumed(player, cut, 30*time.Second) {
		t.Fatalf("the player on fra did not resume after the republish through efra: %v; fra's links: %s", player.err, c.rawAPI("fra", "/v1/links"))
	}
	if h := c.host("fra", stream); h != "sin" {
		t.Errorf("the stream moved to %q; the scenario needs it to stay on sin", h)
	}
	t.Logf("republish through efra: longest gap the player on fra saw: %s", player.maxGap(cut).Round(10*time.Millisecond))
	cancel()
	checkMonotonic(t, player, "fra", "after the takeover through efra")
}

// TestClusterDrainOnRestart is issue 14's drain on restart: SIGTERM on the
// hosting center while players on the two other centers play. The edge
// moves its uplink make-before-break, the other centers' pulls follow the
// directory make-before-break, and only then does the center close: its
// backbone links are all gone before its leave wait ends, and both
// players keep their connection and play on.
func TestClusterDrainOnRestart(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "tyo", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("fra", "sin", "tyo", "esin")
	c.rttOrdered("esin", "sin", "tyo", "fra")
	const stream = "live/drain"
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	c.publishVia(ctx, "esin", "drain", src)
	testmedia.Eventually(t, 20*time.Second, "fra's and tyo's directories name sin", func() bool {
		return c.host("fra", stream) == "sin" && c.host("tyo", stream) == "sin"
	})
	players := c.playOn(ctx, stream, "fra", "tyo")

	before := map[string]int{}
	for n, p := range players {
		before[n] = p.frames()
	}
	term := time.Now()
	c.stop("sin", syscall.SIGTERM)
	exited := time.Since(term)
	for n, p := range players {
		select {
		case <-p.done:
			t.Fatalf("the player on %s ended during the drain of sin: %v", n, p.err)
		default:
		}
		if !resumed(p, term.Add(exited), 30*time.Second) {
			t.Fatalf("the player on %s did not play on after sin exited: %v; links: %s", n, p.err, c.rawAPI(n, "/v1/links"))
		}
	}
	b, _ := os.ReadFile(c.logs["esin"])
	if !bytes.Contains(b, []byte("uplink moved make-before-break")) {
		t.Errorf("esin did not move its uplink make-before-break")
	}
	b, _ = os.ReadFile(c.logs["sin"])
	if bytes.Contains(b, []byte("timeout waiting for update broadcast")) {
		// a load update after the leave waited 5 s for a broadcast
		// nobody takes, holding up the exit
		t.Errorf("sin advertised its load after leaving the cluster")
	}
	if bytes.Contains(b, []byte("backbone links still open after the leave wait")) {
		t.Errorf("sin closed with backbone links still open (an uplink or a pull did not move first)")
	}
	since := time.Since(term)
	for _, n := range []string{"fra", "tyo"} {
		p := players[n]
		got := p.framesSince(term)
		t.Logf("drain of sin (exited after %s): player on %s: longest gap %s, %d frames in the %s since SIGTERM (%d at 25 fps), %d frames missing by their timestamps",
			exited.Round(10*time.Millisecond), n, p.maxGap(term).Round(10*time.Millisecond), got, since.Round(10*time.Millisecond), int(since.Seconds()*25),
			p.missing(before[n], 40))
		if p.missing(before[n], 40) != 0 {
			t.Logf("the player on %s: timestamp steps %q", n, p.steps(before[n], 40))
		}
	}
	// how fra's pull moved (sin -> tyo): spliced at tyo's keyframe, or
	// at once and why
	b, _ = os.ReadFile(c.logs["fra"])
	t.Logf("fra: %s", grepLines(string(b), `"msg":"pull s`))
	// fra's pull moved make-before-break onto the same edge timeline, so
	// its FLV timestamps are the encoder's: a step of more than one frame
	// interval is a lost frame. (tyo took the uplink itself; its session
	// is rebased, so its timestamps cannot count losses.)
	if n := players["fra"].missing(before["fra"], 40); n != 0 {
		t.Errorf("the player on fra lost %d frames during the drain of sin", n)
	}
	cancel()
	for n, p := range players {
		<-p.done
		if steps := p.backSteps(); len(steps) > 0 {
			t.Errorf("the player on %s saw video timestamps go back: %q", n, steps)
		}
	}
}

// TestClusterCenterChoiceRightAfterEdgeStart is defect 1 of issue 14 (its
// first part): a stream published on an edge that just restarted, before
// the edge measured its RTTs, goes to the center nearest by coordinates
// (sin, 6 km) rather than to whichever center sorts first (fra). The
// restarted edge's gossip pings are held back (UDP to the gossip port;
// it joins over TCP) until its uplink runs, so no RTT is measured when
// it chooses: the choice is by distance, and its log says so.
func TestClusterCenterChoiceRightAfterEdgeStart(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("fra", "sin", "esin")
	// esin rejoins through fra only: sin learns of it by gossip
	c.seeds["esin"] = []string{c.lab.Host("fra").AddrPort(7946).String()}
	for round := range 2 {
		c.stop("esin", syscall.SIGTERM)
		unblock := c.iptables("esin", "OUTPUT", [][]string{{"-p", "udp", "--dport", "7946", "-j", "DROP"}})
		c.restart("esin")
		// publish as soon as esin itself sees both centers (sin may not
		// know of esin's return yet)
		testmedia.Eventually(t, 30*time.Second, "esin sees fra and sin alive", func() bool {
			m := c.nodes("esin")
			return m["fra"].State == "alive" && m["sin"].State == "alive"
		})
		name := fmt.Sprintf("first%d", round)
		pctx, pcancel := context.WithCancel(ctx)
		src := testmedia.Source{Duration: time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
		c.publishVia(pctx, "esin", name, src)
		var center string
		testmedia.Eventually(t, 20*time.Second, "esin has an uplink for live/"+name, func() bool {
			u, ok := c.uplink("esin", "live/"+name)
			center = u.Center
			return ok && u.Center != ""
		})
		m := c.nodes("esin")
		known := 0
		for _, n := range []string{"fra", "sin"} {
			if m[n].RTTMs != nil {
				known++
			}
		}
		unblock()
		choice := grepLines(grepLines(string(must(os.ReadFile(c.logs["esin"]))), `"uplink to center"`), `"live/`+name+`"`)
		t.Logf("round %d: the stream published right after esin's restart went to %s (%d of 2 center RTTs known by then): %s", round, center, known, choice)
		if center != "sin" {
			t.Errorf("round %d: right after esin's restart the stream went to %s, want sin (nearest by coordinates)", round, center)
		}
		if !strings.Contains(choice, `"rtt_measured":false`) {
			t.Errorf("round %d: esin chose with a measured RTT: the test did not exercise the choice by distance", round)
		}
		pcancel()
	}
	// the restarted edge is a member again at once for the centers: its
	// uplink must not be refused meanwhile
	for _, n := range []string{"fra", "sin"} {
		b, _ := os.ReadFile(c.logs[n])
		if bytes.Contains(b, []byte("is no member's address")) {
			t.Errorf("%s refused the just restarted esin's backbone link as not a cluster member", n)
		}
	}
}

// TestClusterReplacement is defect 1 of issue 14 (its second part): a
// stream placed on a far center (here the edge's path to its own site's
// center was slow when it was published) moves, make-before-break, to
// the center with the clearly lowest RTT once the measurements say so.
// The players on the old host and on a third center play on without a
// lost frame (counted by their FLV timestamps) and with monotonic
// timestamps, and the stream stays put afterwards.
func TestClusterReplacement(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := placedFar(t, ctx, "", "replace")
	const stream = "live/replace"
	testmedia.Eventually(t, 20*time.Second, "fra's directory names tyo for "+stream, func() bool { return c.host("fra", stream) == "tyo" })
	players := c.playOn(ctx, stream, "fra", "tyo")
	if u, _ := c.uplink("esin", stream); u.Center != "tyo" || u.Moves != 0 {
		t.Fatalf("before the path to sin got fast: uplink %+v, want on tyo, not moved", u)
	}

	before := map[string]int{}
	for n, p := range players {
		before[n] = p.frames()
	}
	// the path gets fast: sin (4 ms) beats tyo (74 ms) by far
	if err := c.lab.SetLink("esin", "sin", netlab.RTT(wanRTT("esin", "sin"), 0)); err != nil {
		t.Fatal(err)
	}
	fast := time.Now()
	c.uplinkRunsOn("esin", stream, "sin", 60*time.Second)
	moved := time.Since(fast)
	testmedia.Eventually(t, 20*time.Second, "fra's and tyo's directories name sin", func() bool {
		return c.host("fra", stream) == "sin" && c.host("tyo", stream) == "sin"
	})
	testmedia.Eventually(t, 30*time.Second, "fra and tyo pull from sin", func() bool {
		for _, n := range []string{"fra", "tyo"} {
			actx, acancel := bounded()
			links, err := c.client(n).Links(actx)
			acancel()
			if err != nil || len(links.Pulls) != 1 || links.Pulls[0].From != "sin" {
				return false
			}
		}
		return true
	})
	// tyo ended the old uplink once its readers read from sin
	testmedia.Eventually(t, 30*time.Second, "tyo's backbone has no uplink left", func() bool {
		actx, acancel := bounded()
		defer acancel()
		links, err := c.client("tyo").Links(actx)
		if err != nil {
			return false
		}
		for _, b := range links.Backbone {
			if b.Role == "publish" {
				return false
			}
		}
		return true
	})
	for n, p := range players {
		if !resumed(p, time.Now(), 30*time.Second) {
			t.Fatalf("the player on %s did not play on after the re-placement: %v", n, p.err)
		}
	}
	u, _ := c.uplink("esin", stream)
	if u.Moves != 1 || u.Replacements != 1 {
		t.Errorf("uplink after the re-placement: %d moves, %d re-placements; want 1 and 1", u.Moves, u.Replacements)
	}
	b, _ := os.ReadFile(c.logs["esin"])
	if line := grepLines(string(b), "uplink re-placed make-before-break"); line == "" || !strings.Contains(line, `"from_rtt"`) {
		t.Errorf("esin did not log the re-placement with the centers' RTTs")
	} else {
		t.Logf("esin: %s", line)
	}
	if m := c.rawMetrics("esin"); !strings.Contains(m, "relaymesh_uplink_replacements_total 1\n") {
		t.Errorf("esin's metrics do not count one re-placement:\n%s", grepLines(m, "replacements"))
	}
	since := time.Since(fast)
	for n, p := range players {
		t.Logf("re-placement tyo -> sin (uplink on sin %s after the path got fast): player on %s: longest gap %s, %d frames in the %s since (%d at 25 fps), %d frames missing by their timestamps",
			moved.Round(10*time.Millisecond), n, p.maxGap(fast).Round(10*time.Millisecond), p.framesSince(fast), since.Round(10*time.Millisecond),
			int(since.Seconds()*25), p.missing(before[n], 40))
		if miss := p.missing(before[n], 40); miss != 0 {
			t.Errorf("the player on %s lost %d frames across the re-placement", n, miss)
		}
	}
	// how fra's pull moved (tyo -> sin): spliced at sin's keyframe once
	// the old pull had delivered up to it, or at once and why; and how
	// tyo's pull from sin took over from its own abandoned uplink (the
	// same splice)
	for _, n := range []string{"fra", "tyo"} {
		b, _ = os.ReadFile(c.logs[n])
		line := grepLines(string(b), `"msg":"pull s`)
		t.Logf("%s: %s", n, line)
		if line == "" {
			t.Errorf("%s's pull did not take over through a splice", n)
		}
	}
	// it stays: another 100 frames on, still one move
	stay := players["fra"].frames()
	testmedia.Eventually(t, 30*time.Second, "the player on fra receives 100 more frames", func() bool { return players["fra"].frames() >= stay+100 })
	if u, _ := c.uplink("esin", stream); u.Center != "sin" || u.Moves != 1 {
		t.Errorf("the uplink moved again: %+v", u)
	}
	cancel()
	for n, p := range players {
		checkMonotonic(t, p, n, "across the re-placement")
	}
}

// placedFar starts fra, sin, tyo and esin (with extra TOML for esin),
// makes esin's path to sin slow (300 ms) so that tyo is its nearest
// center, and publishes live/<name> through esin until its uplink runs
// on tyo.
func placedFar(t *testing.T, ctx context.Context, esinExtra, name string) *cluster {
	t.Helper()
	c := startClusterExtra(t, map[string]string{"esin": esinExtra}, "fra", "sin", "tyo", "esin")
	if err := c.lab.SetLink("esin", "sin", netlab.RTT(300*time.Millisecond, 0)); err != nil {
		t.Fatal(err)
	}
	c.converged("fra", "sin", "tyo", "esin")
	c.rttOrdered("esin", "tyo", "fra", "sin")
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	c.publishVia(ctx, "esin", name, src)
	c.uplinkRunsOn("esin", "live/"+name, "tyo", 20*time.Second)
	return c
}

// rawMetrics is node's /metrics text ("" when it does not answer).
func (c *cluster) rawMetrics(node string) string {
	resp, err := c.lab.Host(node).HTTPClient().Get(apiAddr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestClusterRejoinedEdgeAdmitted is the refusal of issue 14 defect 1: a
// center that still has a restarted edge as "left" (the edge rejoined
// through another center and the news has not reached this one) admits
// its uplink, instead of refusing it as "not a cluster member".
// Gossip to sin is held back (its port only) while esin restarts, so sin
// learns of the rejoin only after the uplink arrives.
func TestClusterRejoinedEdgeAdmitted(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("fra", "sin", "esin")
	c.rttOrdered("esin", "sin", "fra")
	c.seeds["esin"] = []string{c.lab.Host("fra").AddrPort(7946).String()}
	c.stop("esin", syscall.SIGTERM)
	testmedia.Eventually(t, 20*time.Second, "sin sees esin left", func() bool { return c.nodes("sin")["esin"].State == "left" })
	// sin hears no gossip from esin, and no gossip messages from fra (its
	// TCP ping fallback to fra still works, so fra stays alive for sin)
	unblock := c.iptables("sin", "INPUT", [][]string{
		{"-s", c.lab.Host("esin").Addr().String(), "-p", "udp", "--dport", "7946", "-j", "DROP"},
		{"-s", c.lab.Host("esin").Addr().String(), "-p", "tcp", "--dport", "7946", "-j", "DROP"},
		{"-s", c.lab.Host("fra").Addr().String(), "-p", "udp", "--dport", "7946", "-j", "DROP"},
	})
	defer unblock()
	c.restart("esin")
	testmedia.Eventually(t, 30*time.Second, "esin sees fra and sin alive", func() bool {
		m := c.nodes("esin")
		return m["fra"].State == "alive" && m["sin"].State == "alive"
	})
	src := testmedia.Source{Duration: time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	c.publishVia(ctx, "esin", "rejoin", src)
	const stream = "live/rejoin"
	testmedia.Eventually(t, 20*time.Second, "esin's uplink runs", func() bool {
		u, ok := c.uplink("esin", stream)
		return ok && u.Relay.State == "running" || bytesIn(c.logs["sin"], "is no member's address")
	})
	state := c.nodes("sin")["esin"].State
	unblock()
	u, _ := c.uplink("esin", stream)
	t.Logf("esin's uplink went to %s while sin saw esin as %q", u.Center, state)
	if bytesIn(c.logs["sin"], "is no member's address") {
		t.Errorf("sin refused the restarted esin's uplink as not a cluster member (sin saw esin as %q)", state)
	}
	if u.Center != "sin" {
		t.Errorf("esin's uplink is on %q, want sin (nearest)", u.Center)
	}
}

// iptables appends rules to chain in node's namespace and returns the
// function that deletes them again (once; the test's end calls it too).
func (c *cluster) iptables(node, chain string, rules [][]string) func() {
	c.t.Helper()
	testmedia.Need(c.t, "iptables")
	run := func(op string, r []string) error {
		b, err := c.lab.Host(node).Command(context.Background(), "iptables", append([]string{op, chain}, r...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s %s %v on %s: %v: %s", op, chain, r, node, err, b)
		}
		return nil
	}
	for _, r := range rules {
		if err := run("-A", r); err != nil {
			c.t.Fatal(err)
		}
	}
	var once sync.Once
	undo := func() {
		once.Do(func() {
			for _, r := range rules {
				if err := run("-D", r); err != nil {
					c.t.Error(err)
				}
			}
		})
	}
	c.t.Cleanup(undo)
	return undo
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// bytesIn reports whether the file at path contains s.
func bytesIn(path, s string) bool {
	b, _ := os.ReadFile(path)
	return bytes.Contains(b, []byte(s))
}

// TestClusterLocateSkipsDeadEdge is issue 14's "locate keeps naming a
// dead edge first": right after the Singapore edge is killed, before
// gossip suspects it, locate on any node names the other edge first: it
// dials the edges it is about to name, and the dead one's refused
// connection drops it to the end of the ranking at once.
func TestClusterLocateSkipsDeadEdge(t *testing.T) {
	c := startClusterWith(t, "fra", "esin", "efra")
	c.converged("fra", "esin", "efra")
	locate := func(node string) client.Located {
		actx, cancel := bounded()
		defer cancel()
		loc, err := c.client(node).Locate(actx, "live", "dead", singaporeIP)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	if loc := locate("fra"); loc.Edge.Node != "esin" {
		t.Fatalf("before: locate for a Singapore client names %s, want esin (fra: %s)", loc.Edge.Node, grepLines(string(must(os.ReadFile(c.logs["fra"]))), "edge unreachable"))
	}
	c.stop("esin", syscall.SIGKILL)
	for _, n := range []string{"fra", "efra", "fra"} {
		loc := locate(n)
		state := c.nodes(n)["esin"].State
		t.Logf("locate on %s right after esin's kill (esin %q there): %s first, alternates %v", n, state, loc.Edge.Node, loc.Alternates)
		if loc.Edge.Node != "efra" {
			t.Errorf("locate on %s right after esin's kill names %s first (esin is %q there), want efra", n, loc.Edge.Node, state)
		}
	}
}

// TestClusterUplinkHealth is issue 14's health-based failover of an
// uplink: the path from the edge to its center loses 70 % of the media
// packets (one way; the link stays up, its acks come back). The edge
// moves the uplink make-before-break to the next center and says which
// rule fired (loss, or drops if SRT gave up on packets first).
func TestClusterUplinkHealth(t *testing.T) {
	c := startClusterWith(t, "fra", "sin", "tyo", "esin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.converged("fra", "sin", "tyo", "esin")
	c.rttOrdered("esin", "sin", "tyo", "fra")
	const stream = "live/health"
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv", Bitrate: "2M"}.Defaults()
	c.publishVia(ctx, "esin", "health", src)
	c.uplinkRunsOn("esin", stream, "sin", 20*time.Second)
	// esin -> sin only: the media direction
	if err := c.lab.SetOneWay("esin", "sin", netlab.Impairment{Delay: 2 * time.Millisecond, Loss: 0.7}); err != nil {
		t.Fatal(err)
	}
	testmedia.Eventually(t, 60*time.Second, "esin's uplink moves off sin", func() bool {
		u, ok := c.uplink("esin", stream)
		return ok && u.Center != "sin" && u.Relay.State == "running"
	})
	u, _ := c.uplink("esin", stream)
	log := string(must(os.ReadFile(c.logs["esin"])))
	line := grepLines(log, "uplink unhealthy")
	t.Logf("uplink moved to %s: %s", u.Center, line)
	if !strings.Contains(line, `"rule":"loss"`) && !strings.Contains(line, `"rule":"drops"`) {
		t.Errorf("the uplink did not move for its health (rule loss or drops); esin's moves: %s", grepLines(log, "moves to another center"))
	}
	if !strings.Contains(log, "uplink moved make-before-break away from an unhealthy link") {
		t.Errorf("the health move was not make-before-break")
	}
	if m := c.rawMetrics("esin"); !strings.Contains(m, "relaymesh_uplink_health_moves_total 1\n") {
		t.Errorf("esin's metrics do not count one health move:\n%s", grepLines(m, "health"))
	}
}
