package test

// Cluster tests: real relaymesh binaries, each in its own network namespace
// (test/netlab), over emulated WAN links. Three centers (fra, sin, tyo) and
// two edges (esin near sin, efra near fra). They need root; CI runs them as
// root.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/test/impair/control"
	"github.com/relaymesh/relaymesh/test/netlab"
)

// relaymeshBin is the binary built once by TestMain (root only).
var relaymeshBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			bin, cleanup, err := testmedia.BuildBinary(testmedia.RelaymeshPackage)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer cleanup()
			relaymeshBin = bin
		}
		return m.Run()
	}()
	os.Exit(code)
}

// site is one node of the test cluster.
type site struct {
	name, role, site string
	lat, lon         float64
}

var clusterSites = []site{
	{"fra", "center", "fra", 50.11, 8.68},
	{"sin", "center", "sin", 1.35, 103.82},
	{"tyo", "center", "tyo", 35.68, 139.69},
	{"esin", "edge", "sin", 1.30, 103.85},
	{"efra", "edge", "fra", 50.05, 8.57},
}

// wanRTT is the emulated round trip between two nodes: the issue's
// figures between sites, plus 4 ms when an edge is involved (an edge is
// a few ms from its site's center).
func wanRTT(a, b string) time.Duration {
	var sa, sb string
	extra := time.Duration(0)
	for _, s := range clusterSites {
		if s.name == a {
			sa = s.site
		}
		if s.name == b {
			sb = s.site
		}
		if (s.name == a || s.name == b) && s.role == "edge" {
			extra = 4 * time.Millisecond
		}
	}
	pair := map[string]time.Duration{"fra-sin": 160 * time.Millisecond, "sin-tyo": 70 * time.Millisecond, "fra-tyo": 230 * time.Millisecond}
	if d, ok := pair[sa+"-"+sb]; ok {
		return d + extra
	}
	if d, ok := pair[sb+"-"+sa]; ok {
		return d + extra
	}
	return 4 * time.Millisecond // same site
}

// cluster is a running test cluster.
type cluster struct {
	t     *testing.T
	lab   *netlab.Lab
	dir   string
	procs map[string]*exec.Cmd
	logs  map[string]string
	// exited is closed when a node's process has exited
	exited map[string]chan struct{}
	// seeds are each node's gossip seeds (start and restart)
	seeds map[string][]string
	// extra is TOML appended to a node's config (e.g. [[route]])
	extra map[string]string
}

const (
	apiAddr     = "http://127.0.0.1:9997"
	singaporeIP = "198.51.100.7" // in the sin [[location]]
)

func writeSecret(t *testing.T, path string) {
	b := make([]byte, 32)
	rand.Read(b)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func nodeConfig(s site, ip string, seed []string, dir, gossipKey string) string {
	seeds := ""
	if len(seed) > 0 {
		q := make([]string, len(seed))
		for i, sd := range seed {
			q[i] = strconv.Quote(sd)
		}
		seeds = "seeds = [" + strings.Join(q, ", ") + "]"
	}
	region := map[string]string{"fra": "eu", "sin": "apac", "tyo": "apac"}[s.site]
	return fmt.Sprintf(`version = 1
[node]
name = %q
role = %q
site = %q
region = %q
lat = %v
lon = %v
data_dir = %q

[rtmp]
listen = ":1935"
[http]
listen = ":8080"
[srt]
listen = ":8890"
[api]
listen = "127.0.0.1:9997"

[auth]
publish = true
key_file = %q

[cluster]
enabled = true
bind = "%s:7946"
%s
key_file = %q
backbone_key_file = %q

[[location]]
cidr = "198.51.100.0/24"
site = "sin"
lat = 1.35
lon = 103.82

[[location]]
cidr = "192.0.2.0/24"
site = "fra"
lat = 50.11
lon = 8.68
`, s.name, s.role, s.site, region, s.lat, s.lon, filepath.Join(dir, s.name+"-data"),
		filepath.Join(dir, "auth.key"), ip, seeds, gossipKey, filepath.Join(dir, "backbone.key"))
}

// startCluster builds the lab and starts every node; fra is the seed.
func startCluster(t *testing.T) *cluster {
	c := newCluster(t, clusterSites)
	seed := c.lab.Host("fra").AddrPort(7946).String()
	for _, s := range clusterSites {
		if s.name != "fra" {
			c.seeds[s.name] = []string{seed}
		}
		c.start(s, c.seeds[s.name], filepath.Join(c.dir, "gossip.key"))
	}
	return c
}

// startClusterWith starts only the named nodes of clusterSites (a small
// topology for one scenario). Every node's seeds are all the other
// centers, so any of them can restart and rejoin.
func startClusterWith(t *testing.T, names ...string) *cluster {
	return startClusterExtra(t, nil, names...)
}

// startClusterExtra is startClusterWith with TOML appended to some nodes'
// configs (by node name).
func startClusterExtra(t *testing.T, extra map[string]string, names ...string) *cluster {
	var sites []site
	for _, n := range names {
		sites = append(sites, siteNamed(t, n))
	}
	c := newCluster(t, sites)
	for n, x := range extra {
		c.extra[n] = x
	}
	for _, s := range sites {
		for _, o := range sites {
			if o.role == "center" && o.name != s.name {
				c.seeds[s.name] = append(c.seeds[s.name], c.lab.Host(o.name).AddrPort(7946).String())
			}
		}
	}
	for _, s := range sites {
		c.start(s, c.seeds[s.name], filepath.Join(c.dir, "gossip.key"))
	}
	return c
}

// newCluster builds the lab with sites' hosts, WAN links and secrets.
func newCluster(t *testing.T, sites []site) *cluster {
	netlab.RequireRoot(t)
	testmedia.Need(t, "ffmpeg", "ffprobe")
	lab, err := netlab.New(t, netlab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, lab: lab, dir: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]string{},
		exited: map[string]chan struct{}{}, seeds: map[string][]string{}, extra: map[string]string{}}
	for _, s := range sites {
		if _, err := lab.AddHost(s.name); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range sites {
		for _, b := range sites[i+1:] {
			if err := lab.SetLink(a.name, b.name, netlab.RTT(wanRTT(a.name, b.name), 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeSecret(t, filepath.Join(c.dir, "auth.key"))
	writeSecret(t, filepath.Join(c.dir, "backbone.key"))
	writeSecret(t, filepath.Join(c.dir, "gossip.key"))
	t.Cleanup(func() {
		// RELAYMESH_CLUSTER_LOGS (bench/cluster.sh sets it): keep every
		// node's log there, named by test, for the timings in them
		if keep := os.Getenv("RELAYMESH_CLUSTER_LOGS"); keep != "" {
			for name, path := range c.logs {
				if b, err := os.ReadFile(path); err == nil {
					_ = os.MkdirAll(keep, 0o755)
					_ = os.WriteFile(filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"), b, 0o644)
				}
			}
		}
		if t.Failed() {
			for name, path := range c.logs {
				b, _ := os.ReadFile(path)
				lines := strings.Split(string(b), "\n")
				t.Logf("--- %s log (last 40 lines) ---\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	return c
}

// writeConfig writes s's config file (nodeConfig plus its extra TOML)
// and returns its path.
func (c *cluster) writeConfig(s site, seed []string, gossipKey string) string {
	cfgPath := filepath.Join(c.dir, s.name+".toml")
	if err := os.WriteFile(cfgPath, []byte(nodeConfig(s, c.lab.Host(s.name).Addr().String(), seed, c.dir, gossipKey)+c.extra[s.name]), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return cfgPath
}

func (c *cluster) start(s site, seed []string, gossipKey string) {
	t := c.t
	h := c.lab.Host(s.name)
	cfgPath := c.writeConfig(s, seed, gossipKey)
	logPath := filepath.Join(c.dir, s.name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) // a restart appends
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	cmd := h.Command(context.Background(), relaymeshBin, "run", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.procs[s.name], c.logs[s.name], c.exited[s.name] = cmd, logPath, exited
}

func (c *cluster) api(node, path string, v any) error {
	resp, err := c.lab.Host(node).HTTPClient().Get(apiAddr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s on %s: HTTP %d: %s", path, node, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// rawAPI returns an API answer as text, for failure messages.
func (c *cluster) rawAPI(node, path string) string {
	var v any
	if err := c.api(node, path, &v); err != nil {
		return err.Error()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// client is node's API client, dialing from inside its namespace.
func (c *cluster) client(node string) *client.Client {
	return client.New(apiAddr, client.WithHTTPClient(c.lab.Host(node).HTTPClient()))
}

// bounded is a context for one API call.
func bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// nodes is node's view of the members by name (nil when it does not
// answer).
func (c *cluster) nodes(node string) map[string]client.Node {
	ctx, cancel := bounded()
	defer cancel()
	out, err := c.client(node).Nodes(ctx)
	if err != nil {
		return nil
	}
	m := map[string]client.Node{}
	for _, n := range out.Nodes {
		m[n.Name] = n
	}
	return m
}

// host is the node node's directory names for stream ("" when none).
func (c *cluster) host(node, stream string) string {
	ctx, cancel := bounded()
	defer cancel()
	dir, err := c.client(node).Directory(ctx)
	if err != nil {
		return ""
	}
	for _, e := range dir {
		if e.Stream == stream {
			return e.Node
		}
	}
	return ""
}

// backbone is the backbone listener's session of stream in role
// ("publish" or "read") on the center node.
func (c *cluster) backbone(node, stream, role string) (srt.ConnStats, bool) {
	links, ok := c.links(node)
	if !ok {
		return srt.ConnStats{}, false
	}
	for _, b := range links.Backbone {
		if b.Stream == stream && b.Role == role {
			return b, true
		}
	}
	return srt.ConnStats{}, false
}

// links is node's /v1/links.
func (c *cluster) links(node string) (client.Links, bool) {
	ctx, cancel := bounded()
	defer cancel()
	l, err := c.client(node).Links(ctx)
	return l, err == nil
}

// uplink is the uplink of stream on the edge node.
func (c *cluster) uplink(node, stream string) (edge.Status, bool) {
	links, ok := c.links(node)
	if !ok {
		return edge.Status{}, false
	}
	for _, u := range links.Uplinks {
		if u.Stream == stream {
			return u, true
		}
	}
	return edge.Status{}, false
}

// publish starts ffmpeg in node's namespace.
func (c *cluster) publish(ctx context.Context, node string, src testmedia.Source, url string) (*exec.Cmd, *bytes.Buffer) {
	cmd := c.lab.Host(node).Command(ctx, "ffmpeg", src.Args(url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, &stderr
}

// flvPlayer reads HTTP-FLV and records when each video frame arrived.
type flvPlayer struct {
	mu         sync.Mutex
	video      []time.Time
	vts        []int64 // FLV timestamps of the video frames, ms
	key        []bool  // which of them are keyframes
	keyframes  int
	audio      int
	videoCodec byte // FLV codec id: 7 = AVC
	audioCodec byte // 10 = AAC
	err        error
	done       chan struct{}
	file       string
	early      int   // how many 404s (play-wait over) to ask again after
	asked      int   // requests asked again after a 404
	complete   int64 // bytes of file up to the end of the last whole tag
}

// recorded returns a copy of what the player wrote up to its last whole
// tag: the file itself grows as bytes arrive and may end inside a tag,
// which ffprobe reports as a decode error ("Packet mismatch").
func (p *flvPlayer) recorded(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	n := p.complete
	p.mu.Unlock()
	b, err := os.ReadFile(p.file)
	if err != nil {
		t.Fatal(err)
	}
	out := p.file + fmt.Sprintf(".%d.flv", n)
	if err := os.WriteFile(out, b[:min(n, int64(len(b)))], 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *cluster) play(ctx context.Context, node, url string) *flvPlayer {
	return c.startPlayer(ctx, node, url, 0)
}

// playEarly is play for a player that asks before the stream is
// published: a request the node's play-wait (center.PlayWait) answers
// with 404 because the publisher took longer to start (ffmpeg under CPU
// load, the uplink's handshake) is asked again at once, a bounded number
// of times. Asked again while the stream is still not live, the player
// waits for it again; had it just gone live, the node's GOP cache still
// holds its first keyframe, so no frame is missed.
func (c *cluster) playEarly(ctx context.Context, node, url string) *flvPlayer {
	return c.startPlayer(ctx, node, url, 6)
}

func (c *cluster) startPlayer(ctx context.Context, node, url string, early int) *flvPlayer {
	p := &flvPlayer{done: make(chan struct{}), file: filepath.Join(c.dir, fmt.Sprintf("play-%d.flv", time.Now().UnixNano())), early: early}
	// The lab's client times out after 30 s, which would end a longer
	// play; ctx bounds this one.
	client := c.lab.Host(node).HTTPClient()
	client.Timeout = 0
	go func() {
		defer close(p.done)
		p.err = p.run(ctx, client, url)
	}()
	return p
}

func (p *flvPlayer) run(ctx context.Context, client *http.Client, url string) error {
	var resp *http.Response
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		r, err := client.Do(req)
		if err != nil {
			return err
		}
		if r.StatusCode == http.StatusNotFound && p.asked < p.early {
			r.Body.Close()
			p.mu.Lock()
			p.asked++
			p.mu.Unlock()
			continue
		}
		resp = r
		break
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(p.file)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(io.TeeReader(resp.Body, f))
	head := make([]byte, 13)
	if _, err := io.ReadFull(r, head); err != nil {
		return err
	}
	if string(head[:3]) != "FLV" {
		return fmt.Errorf("not FLV: %q", head[:3])
	}
	th := make([]byte, 11)
	for {
		if _, err := io.ReadFull(r, th); err != nil {
			if ctx.Err() != nil || err == io.EOF {
				return nil
			}
			return err
		}
		size := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
		body := make([]byte, size+4)
		if _, err := io.ReadFull(r, body); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if binary.BigEndian.Uint32(body[size:]) != uint32(size+11) {
			return fmt.Errorf("bad PreviousTagSize")
		}
		now := time.Now()
		p.mu.Lock()
		if p.complete == 0 {
			p.complete = 13
		}
		p.complete += int64(11 + size + 4)
		switch {
		case th[0] == 9 && size >= 2:
			p.videoCodec = body[0] & 0x0f
			if body[1] == 1 { // AVC NALU, not a sequence header
				p.video = append(p.video, now)
				p.vts = append(p.vts, int64(th[7])<<24|int64(th[4])<<16|int64(th[5])<<8|int64(th[6]))
				p.key = append(p.key, body[0]>>4 == 1)
				if body[0]>>4 == 1 {
					p.keyframes++
				}
			}
		case th[0] == 8 && size >= 2:
			p.audioCodec = body[0] >> 4
			if body[1] == 1 {
				p.audio++
			}
		}
		p.mu.Unlock()
	}
}

func (p *flvPlayer) frames() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.video)
}

// framesSince counts video frames that arrived after t.
func (p *flvPlayer) framesSince(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, at := range p.video {
		if at.After(t) {
			n++
		}
	}
	return n
}

// backSteps describes where the video timestamps did not increase.
func (p *flvPlayer) backSteps() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for i := 1; i < len(p.vts); i++ {
		if p.vts[i] <= p.vts[i-1] {
			out = append(out, fmt.Sprintf("frame %d: %d ms after %d ms", i, p.vts[i], p.vts[i-1]))
		}
	}
	return out
}

// missing counts the video frames missing by the FLV timestamps (a step
// of more than 1.5 frame intervals), from frame index from on.
func (p *flvPlayer) missing(from int, interval int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := max(from, 1); i < len(p.vts); i++ {
		if d := p.vts[i] - p.vts[i-1]; d*2 > interval*3 {
			n += int((d+interval/2)/interval) - 1
		}
	}
	return n
}

// maxGap is the longest time between two video frames after t.
func (p *flvPlayer) maxGap(t time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gap time.Duration
	prev := t
	for _, at := range p.video {
		if at.Before(t) {
			continue
		}
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return gap
}

// readOn (in test t, a subtest's) reads secs seconds of url with ffmpeg in node's namespace
// (bounded by limit) into out, in the container its name ends with, and
// probes what it got; it reports how long the read took.
func (c *cluster) readOn(t *testing.T, ctx context.Context, node, url string, limit time.Duration, secs, out string) (testmedia.Result, time.Duration) {
	t.Helper()
	took := c.read(t, ctx, node, url, limit, secs, out)
	res, err := testmedia.Analyze(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	return res, took
}

// read is readOn without the probe.
func (c *cluster) read(t *testing.T, ctx context.Context, node, url string, limit time.Duration, secs, out string) time.Duration {
	t.Helper()
	format := map[string]string{".ts": "mpegts", ".nut": "nut"}[filepath.Ext(out)]
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	cmd := c.lab.Host(node).Command(rctx, "ffmpeg", "-hide_banner", "-v", "error", "-i", url, "-t", secs, "-c", "copy", "-f", format, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg reading %s on %s: %v: %s", url, node, err, b)
	}
	return time.Since(start)
}

// resumed waits until the player received 50 frames after t.
func resumed(p *flvPlayer, t time.Time, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p.framesSince(t) >= 50 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestCluster runs the scenarios on one cluster, in order: they
// share the nodes to stay within a few minutes of CI time.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	names := []string{"fra", "sin", "tyo", "esin", "efra"}

	t.Run("converge", func(t *testing.T) {
		start := time.Now()
		testmedia.Eventually(t, 30*time.Second, "every node sees five alive members", func() bool {
			for _, n := range names {
				m := c.nodes(n)
				alive := 0
				for _, v := range m {
					if v.State == "alive" {
						alive++
					}
				}
				if alive != 5 {
					return false
				}
			}
			return true
		})
		t.Logf("converged in %s", time.Since(start).Round(10*time.Millisecond))
		m := c.nodes("fra")
		for _, s := range clusterSites {
			if m[s.name].Role != s.role || m[s.name].Site != s.site {
				t.Errorf("fra sees %s as %+v, want role %s site %s", s.name, m[s.name], s.role, s.site)
			}
		}
		// RTT is measured, not configured: at least the emulated delay.
		testmedia.Eventually(t, 20*time.Second, "fra measures its RTT to sin", func() bool {
			v := c.nodes("fra")["sin"]
			return v.RTTMs != nil && v.PingMs != nil
		})
		// Center choice follows the RTT estimate (network coordinates),
		// which needs some probe rounds to settle.
		start = time.Now()
		testmedia.Eventually(t, 60*time.Second, "esin's RTT estimates order the centers sin < tyo < fra", func() bool {
			m := c.nodes("esin")
			s, y, f := m["sin"].RTTMs, m["tyo"].RTTMs, m["fra"].RTTMs
			return s != nil && y != nil && f != nil && *s < *y && *y < *f && *y > 40
		})
		t.Logf("RTT estimates ordered after another %s", time.Since(start).Round(10*time.Millisecond))
		v := c.nodes("fra")["sin"]
		t.Logf("fra -> sin: last ping %.1f ms, estimate %.1f ms (emulated 160 ms)", *v.PingMs, *v.RTTMs)
		if *v.PingMs < 150 {
			t.Errorf("fra's measured RTT to sin is %.1f ms, want at least the emulated 160 ms", *v.PingMs)
		}
	})

	t.Run("wrong_key_refused", func(t *testing.T) {
		if _, err := c.lab.AddHost("rogue"); err != nil {
			t.Fatal(err)
		}
		badKey := filepath.Join(c.dir, "rogue-gossip.key")
		writeSecret(t, badKey)
		c.start(site{"rogue", "edge", "sin", 1.3, 103.8}, []string{c.lab.Host("fra").AddrPort(7946).String()}, badKey)
		testmedia.Eventually(t, 20*time.Second, "the rogue node logs the key mismatch", func() bool {
			b, _ := os.ReadFile(c.logs["rogue"])
			return bytes.Contains(b, []byte("key mismatch"))
		})
		if _, ok := c.nodes("fra")["rogue"]; ok {
			t.Error("fra lists the node with the wrong gossip key")
		}
		if m := c.nodes("rogue"); len(m) != 1 {
			t.Errorf("the rogue node sees %d members, want only itself", len(m))
		}
		c.procs["rogue"].Process.Kill()
	})

	// Scenario 2: publish where locate says, play on another center.
	const stream = "live/sg1"
	src := testmedia.Source{Duration: 10 * time.Minute, Realtime: true, Audio: true, Format: "flv"}.Defaults()
	var pub *exec.Cmd
	var pubErr *bytes.Buffer
	var player *flvPlayer
	t.Run("locate_publish_pull", func(t *testing.T) {
		actx, cancel := bounded()
		loc, err := c.client("fra").Locate(actx, "live", "sg1", singaporeIP)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if loc.Edge.Node != "esin" || len(loc.Alternates) != 1 || loc.Alternates[0].Node != "efra" {
			t.Fatalf("locate for a Singapore client: %+v, want edge esin and alternate efra", loc)
		}
		if !strings.Contains(loc.Edge.RTMP, "?token=") {
			t.Errorf("locate's RTMP URL %q is not signed (auth.publish is on)", loc.Edge.RTMP)
		}
		start := time.Now()
		pub, pubErr = c.publish(ctx, "esin", src, loc.Edge.RTMP)
		testmedia.Eventually(t, 20*time.Second, "every directory says sin hosts "+stream, func() bool {
			for _, n := range names {
				if c.host(n, stream) != "sin" {
					return false
				}
			}
			return true
		})
		t.Logf("publish to every directory naming sin: %s", time.Since(start).Round(10*time.Millisecond))

		player = c.play(ctx, "fra", "http://"+c.lab.Host("fra").AddrPort(8080).String()+"/"+stream+".flv")
		testmedia.Eventually(t, 20*time.Second, "the player on fra receives 100 frames", func() bool { return player.frames() >= 100 })
		player.mu.Lock()
		vc, ac, kf := player.videoCodec, player.audioCodec, player.keyframes
		player.mu.Unlock()
		if vc != 7 || ac != 10 {
			t.Errorf("player on fra: video codec id %d, audio %d; want 7 (H.264) and 10 (AAC)", vc, ac)
		}
		if kf < 2 {
			t.Errorf("player on fra saw %d keyframes in 100 frames with a 2 s GOP", kf)
		}
		res, err := testmedia.Analyze(ctx, player.recorded(t))
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.Width != src.Width || !res.FirstKey {
			t.Errorf("ffprobe of what fra played: %+v", res)
		}
		if res.DecodeErrors != "" {
			t.Errorf("decode errors in what fra played: %s", res.DecodeErrors)
		}
	})
	if player == nil || t.Failed() {
		return
	}

	// An SRT player on a center that does not have the stream: the center
	// pulls it on demand while the player's handshake waits.
	t.Run("srt_play_pulls_on_demand", func(t *testing.T) {
		url := "srt://" + c.lab.Host("tyo").AddrPort(8890).String() + "?streamid=read:" + stream
		out := filepath.Join(c.dir, "tyo-srt.ts")
		took := c.read(t, ctx, "tyo", url, 30*time.Second, "2", out)
		// the pull, asked for right away: it stops PullIdleStop (10 s)
		// after its last reader, and ffprobe on a loaded host can take
		// a while
		actx, cancel := bounded()
		links, err := c.client("tyo").Links(actx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(links.Pulls) != 1 || links.Pulls[0].Stream != stream || links.Pulls[0].From != "sin" {
			t.Errorf("tyo's pulls: %+v, want %s from sin; esin's uplink: %s", links.Pulls, stream, c.rawAPI("esin", "/v1/links"))
		}
		res, err := testmedia.Analyze(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.AudioCodec != "aac" || !res.FirstKey || res.DecodeErrors != "" {
			t.Errorf("ffprobe of what the SRT player on tyo got: %+v", res)
		}
		t.Logf("SRT player on tyo (stream on sin): 2 s of media read in %s", took.Round(10*time.Millisecond))
	})

	// An LL-HLS player on a center that does not have the stream: the
	// muxer's wait pulls it on demand, as for the other outputs.
	t.Run("hls_play_on_a_center_without_the_stream", func(t *testing.T) {
		url := "http://" + c.lab.Host("tyo").AddrPort(8080).String() + "/" + stream + "/index.m3u8"
		res, took := c.readOn(t, ctx, "tyo", url, 60*time.Second, "3", filepath.Join(c.dir, "tyo-hls.nut"))
		if res.VideoCodec != "h264" || res.AudioCodec != "aac" || !res.FirstKey || res.DecodeErrors != "" || res.VideoFrames < 70 {
			t.Errorf("ffprobe of what the LL-HLS player on tyo got: %+v", res)
		}
		t.Logf("LL-HLS player on tyo (stream on sin): 3 s of media read in %s", took.Round(10*time.Millisecond))
	})

	t.Run("kill_hosting_center", func(t *testing.T) {
		atKill := player.frames()
		killed := time.Now()
		if err := c.procs["sin"].Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		c.uplinkRunsOn("esin", stream, "tyo", 20*time.Second)
		moved := time.Since(killed)
		testmedia.Eventually(t, 20*time.Second, "fra's directory names tyo", func() bool { return c.host("fra", stream) == "tyo" })
		if !resumed(player, killed.Add(moved), 20*time.Second) {
			t.Fatalf("the player on fra did not resume within 20 s after the uplink moved to tyo (%d frames since); fra's links: %s",
				player.framesSince(killed.Add(moved)), c.rawAPI("fra", "/v1/links"))
		}
		if pub.ProcessState != nil {
			t.Fatalf("the publisher exited during the failover: %s", pubErr)
		}
		actx, cancel := bounded()
		st, err := c.client("esin").Stream(actx, stream)
		cancel()
		if err != nil || st.Publisher == nil {
			t.Errorf("the edge lost its publisher: %v %+v", err, st)
		}
		// frames missing by the FLV timestamps (logged, not checked:
		// single-path, the new host's stream starts at its first
		// keyframe)
		interval := int64(1000 / src.FPS)
		t.Logf("kill -9 of sin: uplink on tyo after %s; longest gap the player on fra saw: %s; %d frames missing (steps %q)",
			moved.Round(10*time.Millisecond), player.maxGap(killed).Round(10*time.Millisecond),
			player.missing(atKill, interval), player.steps(atKill, interval))
	})

	t.Run("blackhole_center", func(t *testing.T) {
		if err := c.lab.Blackhole("tyo", true); err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		c.uplinkRunsOn("esin", stream, "fra", 20*time.Second)
		moved := time.Since(cut)
		testmedia.Eventually(t, 30*time.Second, "efra declares tyo failed", func() bool {
			v, ok := c.nodes("efra")["tyo"]
			return ok && (v.State == "dead" || v.State == "suspect")
		})
		dead := time.Since(cut)
		if !resumed(player, cut.Add(moved), 20*time.Second) {
			t.Fatalf("the player on fra did not resume within 20 s after the uplink moved to fra (%d frames since); fra's links: %s",
				player.framesSince(cut.Add(moved)), c.rawAPI("fra", "/v1/links"))
		}
		if pub.ProcessState != nil {
			t.Fatalf("the publisher exited during the failover: %s", pubErr)
		}
		t.Logf("blackhole of tyo: uplink on fra after %s; tyo suspect/dead at efra after %s; longest player gap %s",
			moved.Round(10*time.Millisecond), dead.Round(10*time.Millisecond), player.maxGap(cut).Round(10*time.Millisecond))
		c.lab.Blackhole("tyo", false)
	})
}

// TestClusterBackboneLoss is scenario 4: a 3 Mbps stream over a backbone
// with 150 ms RTT and 2% loss arrives without lost frames.
func TestClusterBackboneLoss(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testmedia.Eventually(t, 30*time.Second, "esin sees sin", func() bool { return c.nodes("esin")["sin"].State == "alive" })
	// Keep the other centers out of the way: the stream must go to sin.
	if err := c.lab.SetLink("esin", "sin", netlab.RTT(150*time.Millisecond, 0.02)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"fra", "tyo"} {
		c.procs[n].Process.Kill()
	}
	testmedia.Eventually(t, 30*time.Second, "esin sees fra and tyo gone", func() bool {
		m := c.nodes("esin")
		return m["fra"].State != "alive" && m["tyo"].State != "alive"
	})
	const stream = "live/loss"
	dur := 20 * time.Second // bench/cluster.sh sets a longer run
	if d, err := time.ParseDuration(os.Getenv("RELAYMESH_LOSS_DURATION")); err == nil && d > 0 {
		dur = d
	}
	src := testmedia.Source{Duration: dur, Realtime: true, Audio: true, Format: "flv", Bitrate: "3M", CBR: true}.Defaults()
	lctx, cancel := bounded()
	loc, err := c.client("esin").Locate(lctx, "live", "loss", singaporeIP)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.lab.Stats()
	if err != nil {
		t.Fatal(err)
	}
	player := c.playEarly(ctx, "sin", "http://"+c.lab.Host("sin").AddrPort(8080).String()+"/"+stream+".flv")
	pub, pubErr := c.publish(ctx, "esin", src, loc.Edge.RTMP)
	var last edge.Status
	var recv srt.ConnStats // the center's receiving side of the uplink
	testmedia.Eventually(t, dur+40*time.Second, "the publisher finishes", func() bool {
		if u, ok := c.uplink("esin", stream); ok && u.Relay.SRT != nil {
			last = u
		}
		if b, ok := c.backbone("sin", stream, "publish"); ok {
			recv = b
		}
		return pub.ProcessState != nil
	})
	if !pub.ProcessState.Success() {
		t.Fatalf("publisher: %s: %s", pub.ProcessState, pubErr)
	}
	testmedia.Eventually(t, 30*time.Second, "the player ends with the stream", func() bool {
		select {
		case <-player.done:
			return true
		default:
			return false
		}
	})
	got, want := player.frames(), src.Frames()
	if player.err != nil {
		t.Errorf("the player on sin ended with %v", player.err)
	}
	if player.asked > 0 {
		t.Logf("the player asked %d more time(s): the stream was not live on sin within its play-wait", player.asked)
	}
	after, err := c.lab.Stats()
	if err != nil {
		t.Fatal(err)
	}
	late, kdrop := after.Late-before.Late, after.KernelDropped-before.KernelDropped
	t.Logf("sin's receiving side: SRT latency %d ms at RTT %.0f ms, %d packets received, %d lost, %d retransmitted, %d dropped too late; "+
		"the emulator: %d lost, %d delayed, %d let go more than %v late (worst %.0f ms), %d dropped by the kernel",
		recv.LatencyMs, recv.RTTMs, recv.PacketsReceived, recv.PacketsLost, recv.Retransmits, recv.Drops,
		after.Lost-before.Lost, after.Delayed-before.Delayed, late, control.LateThreshold, after.MaxLateMs, kdrop)
	if last.Relay.SRT == nil {
		t.Fatal("no SRT statistics from the uplink")
	}
	tot := last.Relay.Total
	t.Logf("150 ms RTT, 2%% loss, %s: %d of %d frames; uplink: %d session(s), SRT latency %d ms at RTT %.0f ms, totals %+v",
		src.Bitrate, got, want, last.Relay.Sessions, last.Relay.SRT.LatencyMs, last.Relay.SRT.RTTMs, tot)
	if tot.Bytes > 0 {
		// the data packets' bytes on the wire (IP, UDP and SRT headers and
		// retransmissions included) over the media bytes, both from the
		// same samples of every session
		t.Logf("backbone bytes on the wire per media byte: %.3f (%d wire bytes in %d packets for %d media bytes, %.2f Mbit/s of media)",
			float64(tot.WireBytes)/float64(tot.Bytes), tot.WireBytes, tot.PacketsSent, tot.Bytes, float64(tot.Bytes)*8/dur.Seconds()/1e6)
	}
	if tot.Retransmits == 0 {
		t.Error("no retransmits on a link with 2% loss: was the loss applied?")
	}
	// latency = "auto": 4x an RTT of at least the emulated 150 ms; less
	// is a link sized before its RTT was known (it got the 120 ms floor
	// once, and lost every packet that needed a retransmission)
	if recv.LatencyMs < 600 {
		t.Errorf("sin's side of the uplink has %d ms of SRT latency, want at least 4 x 150 ms", recv.LatencyMs)
	}
	if tot.Drops != 0 {
		t.Errorf("the uplink dropped %d packets (too late to retransmit)", tot.Drops)
	}
	if last.Relay.Sessions != 1 {
		t.Errorf("the uplink needed %d SRT sessions, want one for the whole stream", last.Relay.Sessions)
	}
	// The player attaches before the stream starts and reads to its end:
	// every frame the publisher sent must arrive.
	t.Logf("frames lost under loss: %d", max(0, want-got))
	if got < want {
		if late+kdrop > 0 {
			// the path was slower (or lossier) than configured: the
			// test's premise did not hold, whatever relaymesh did
			t.Errorf("harness overloaded, not a relaymesh result: the emulator let %d packets go late (worst %.0f ms) and the kernel dropped %d before it saw them; "+
				"the player on sin got %d video frames, the publisher sent %d", late, after.MaxLateMs, kdrop, got, want)
		} else {
			t.Errorf("the player on sin got %d video frames, the publisher sent %d (sin's receiver dropped %d packets too late)", got, want, recv.Drops)
		}
	}
	res, err := testmedia.Analyze(ctx, player.recorded(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.DecodeErrors != "" || res.NonMonotonic != 0 {
		t.Errorf("what sin played: %d non-monotonic DTS, decode errors: %s", res.NonMonotonic, res.DecodeErrors)
	}
}

// steps lists where the video timestamps, after frame from, step by more
// than 1.5 intervals or not forward, with the frames' arrival times.
func (p *flvPlayer) steps(from int, interval int64) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for i := max(from, 1); i < len(p.vts); i++ {
		if d := p.vts[i] - p.vts[i-1]; d*2 > interval*3 || d <= 0 {
			key := ""
			if p.key[i] {
				key = " (keyframe)"
			}
			out = append(out, fmt.Sprintf("#%d %d->%d%s at %s (prev at %s)", i, p.vts[i-1], p.vts[i], key, p.video[i].Format("15:04:05.000"), p.video[i-1].Format("15:04:05.000")))
		}
	}
	return out
}
