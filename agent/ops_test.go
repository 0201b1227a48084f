//go:build linux

package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/nettest"
	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/listeners"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/metrics"
	"github.com/relaymesh/relaymesh/netutil"
)

func TestQoSConfigMapping(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *config.Config)
		want func(n *netutil.QoSConfig)
	}{
		{"defaults: backbone port is media, gossip and API ports are control", func(c *config.Config) {
			c.QoS = config.QoSConfig{Enabled: true, Interface: "eth0", Rate: 100_000_000}
		}, func(n *netutil.QoSConfig) {
			n.Enabled, n.Interface, n.Rate = true, "eth0", 100_000_000
			n.MediaPorts, n.ControlPorts = []uint16{9710}, []uint16{7946, 9997}
		}},
		{"cluster listeners and dscp followed", func(c *config.Config) {
			c.QoS = config.QoSConfig{Enabled: true, Interface: "eth1", Rate: 50_000_000, MediaRate: 20_000_000, ControlRate: 1_000_000}
			c.Cluster.BackboneListen = "10.0.0.1:9000"
			c.Cluster.Bind = ":8000"
			c.Cluster.DSCP = 46
			c.API.Listen = ""
		}, func(n *netutil.QoSConfig) {
			n.Enabled, n.Interface, n.Rate, n.MediaRate, n.ControlRate = true, "eth1", 50_000_000, 20_000_000, 1_000_000
			n.MediaDSCP = 46
			n.MediaPorts, n.ControlPorts = []uint16{9000}, []uint16{8000}
		}},
		{"explicit values win", func(c *config.Config) {
			c.QoS = config.QoSConfig{Enabled: true, Interface: "eth0", Rate: 10_000_000, MediaShare: 0.7, MediaDSCP: 10,
				MediaPorts: []int{5000, 5001}, ControlPorts: []int{22}}
		}, func(n *netutil.QoSConfig) {
			n.Enabled, n.Interface, n.Rate, n.MediaShare, n.MediaDSCP = true, "eth0", 10_000_000, 0.7, 10
			n.MediaPorts, n.ControlPorts = []uint16{5000, 5001}, []uint16{22}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.mod(c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			want := netutil.DefaultQoSConfig()
			tc.want(&want)
			if got := c.NetQoS(); !reflect.DeepEqual(got, want) {
				t.Errorf("netQoS =\n %+v, want\n %+v", got, want)
			}
		})
	}
}

func TestOpsConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"qos rate too low, named by key", "[qos]\nenabled = true\ninterface = \"eth0\"\nrate = \"500k\"\n",
			[]string{"qos.rate: 500000 bit/s is below the minimum"}},
		{"qos without interface", "[qos]\nenabled = true\nrate = \"100M\"\n",
			[]string{"qos.interface: missing"}},
		{"qos port out of range", "[qos]\nenabled = true\ninterface = \"eth0\"\nrate = \"100M\"\nmedia_ports = [70000]\n",
			[]string{"qos.media_ports[0]: 70000 is not a port"}},
		{"qos rate not a bitrate", "[qos]\nrate = 100\n", []string{"qos.rate"}},
		{"qos off: not checked", "[qos]\ninterface = \"\"\nrate = \"1k\"\n", nil},
		{"webhook url scheme", "[webhooks]\nurl = \"ftp://x/\"\n", []string{"webhooks.url:", "not an http:// or https://"}},
		{"webhook events unknown", "[webhooks]\nurl = \"https://h/\"\nevents = [\"stream.published\", \"stream.exploded\"]\n",
			[]string{"webhooks.events[1]: \"stream.exploded\" is not one of"}},
		{"webhook events: stream.reconnected is one", "[webhooks]\nurl = \"https://h/\"\nevents = [\"stream.reconnected\", \"member.leave\"]\n", nil},
		{"webhook secret without url", "[webhooks]\nsecret_file = \"/etc/relaymesh/hook.key\"\n", []string{"webhooks.url: must be set"}},
		{"webhook secret relative", "[webhooks]\nurl = \"https://h/\"\nsecret_file = \"hook.key\"\n", []string{"webhooks.secret_file:", "not an absolute path"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "relaymesh.toml")
			os.WriteFile(p, []byte("version = 1\n"+tc.toml), 0o644)
			_, err := config.Load(p)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load accepted it, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestAgentWebhooks: a stream's publish and end, as they happen in the
// hub, reach the configured endpoint signed and in order; a reload moves
// the endpoint and filters by webhooks.events; a refused reload keeps the
// sender in force.
func TestAgentWebhooks(t *testing.T) {
	r1 := NewHookSink(t)
	secretFile := r1.SecretFile

	cfg := testAgentConfig(t)
	cfg.Limits.ReconnectGrace = config.Duration(100 * time.Millisecond)
	cfg.Webhooks = config.WebhooksConfig{URL: r1.URL(), SecretFile: secretFile}
	a, _ := runAgent(t, cfg)

	// live runs a publisher of key until the stream has been published,
	// then stops it; the stream ends after the grace
	live := func(key string, published func() bool) {
		ctx, cancel := context.WithCancel(context.Background())
		fed := feed(t, ctx, a.hub, key, 25)
		testmedia.Eventually(t, 5*time.Second, key+" published", published)
		cancel()
		<-fed
	}
	live("live/hook", func() bool { return len(r1.Hooks(t)) == 1 })
	testmedia.Eventually(t, 10*time.Second, "stream.unpublished after the reconnect grace", func() bool { return len(r1.Hooks(t)) == 2 })
	want := []string{`stream.published {"protocol":"test","stream":"live/hook"}`, `stream.unpublished {"reason":"publisher gone","stream":"live/hook"}`}
	if got := r1.Lines(t); !reflect.DeepEqual(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	if h := r1.Hooks(t)[0]; h.Node != "metrics-node" {
		t.Errorf("node = %q, want metrics-node", h.Node)
	}

	// reload: a new endpoint and only stream.unpublished
	r2 := NewHookSink(t) // same HookSecret: it verifies what secretFile signs
	next := *cfg
	next.Webhooks = config.WebhooksConfig{URL: r2.URL(), SecretFile: secretFile, Events: []string{config.EventStreamUnpublished}}
	if err := reloadOpsForTest(a, cfg, &next); err != nil {
		t.Fatal(err)
	}
	live("live/second", func() bool { return a.hub.Stream("live/second") != nil })
	testmedia.Eventually(t, 10*time.Second, "stream.unpublished at the new endpoint", func() bool { return len(r2.Hooks(t)) == 1 })
	if got := r2.Lines(t); got[0] != `stream.unpublished {"reason":"publisher gone","stream":"live/second"}` {
		t.Errorf("new endpoint got %q, want only the end of live/second", got)
	}
	if n := len(r1.Hooks(t)); n != 2 {
		t.Errorf("old endpoint got %d events after the reload, want none", n-2)
	}

	// a secret file that went bad refuses the reload
	os.WriteFile(secretFile, []byte("short"), 0o600)
	next2 := next
	next2.Webhooks.URL = r1.URL()
	if err := reloadOpsForTest(a, &next, &next2); err == nil || !strings.Contains(err.Error(), "webhooks.secret_file") {
		t.Errorf("reload with a 5-byte secret = %v, want a webhooks.secret_file error", err)
	}
	live("live/third", func() bool { return a.hub.Stream("live/third") != nil })
	testmedia.Eventually(t, 10*time.Second, "the old sender still in force", func() bool { return len(r2.Hooks(t)) == 2 })

	mfs := scrape(t, a)
	if v, ok := promtest.Value(mfs, "relaymesh_webhook_events_total", map[string]string{"result": "delivered"}); !ok || v != 2 {
		t.Errorf("relaymesh_webhook_events_total{result=delivered} = %v (present %v), want 2 (the sender in force)", v, ok)
	}
	if v, ok := promtest.Value(mfs, "relaymesh_events_total", map[string]string{"kind": "stream.ended"}); !ok || v != 3 {
		t.Errorf("relaymesh_events_total{kind=stream.ended} = %v (present %v), want 3", v, ok)
	}
}

// inNewNS runs fn on a locked OS thread inside a fresh network namespace
// and throws the thread away afterwards.
func inNewNS(t *testing.T, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and changes tc state in it (CI runs as root)")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// addVeth adds a veth pair name/name+"p" in the thread's namespace, up.
func addVeth(name string) error {
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(l); err != nil {
		return err
	}
	for _, n := range []string{name, name + "p"} {
		ln, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(ln)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// collectNow runs the agent's collector on the calling goroutine (and so
// in its network namespace) and returns the samples by name.
func collectNow(a *Agent) map[string][]*dto.Metric {
	ch := make(chan prometheus.Metric, 1024)
	metrics.New(metricsSource{a}).Collect(ch)
	close(ch)
	out := map[string][]*dto.Metric{}
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		name := m.Desc().String()
		name = name[strings.Index(name, `"`)+1:]
		name = name[:strings.Index(name, `"`)]
		out[name] = append(out[name], &d)
	}
	return out
}

func opsTestAgent(logs io.Writer) *Agent {
	level := new(slog.LevelVar)
	a := &Agent{log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})), level: level,
		hub: media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), cfg: config.Default(), started: time.Now()}
	a.ls = listeners.New(listeners.Deps{Hub: a.hub, Log: a.log}) // none open
	return a
}

// TestQoSLifecycle applies [qos] on a veth interface in a fresh network
// namespace, reconciles a rate change and an interface change, exports the
// class counters, and removes the tree on close.
func TestQoSLifecycle(t *testing.T) {
	inNewNS(t, func() error {
		for _, n := range []string{"rmops0", "rmops1"} {
			if err := addVeth(n); err != nil {
				return err
			}
		}
		var logs testmedia.LogBuffer
		a := opsTestAgent(&logs)
		defer a.hub.Close()
		cfg := config.Default()
		cfg.QoS = config.QoSConfig{Enabled: true, Interface: "rmops0", Rate: 100_000_000}
		classes := func(ifname string) int {
			cs, err := netutil.ClassStats(ifname)
			if err != nil {
				t.Errorf("ClassStats(%s): %v", ifname, err)
			}
			return len(cs)
		}
		if err := a.setQoS(cfg.NetQoS()); err != nil {
			return err
		}
		if n := classes("rmops0"); n != 3 {
			t.Errorf("after apply: %d classes on rmops0, want media, control, bulk", n)
		}
		cfg.QoS.Rate = 50_000_000
		if err := a.setQoS(cfg.NetQoS()); err != nil {
			return err
		}
		if n := classes("rmops0"); n != 3 {
			t.Errorf("after a rate change: %d classes, want 3", n)
		}
		cfg.QoS.Interface = "rmops1"
		if err := a.setQoS(cfg.NetQoS()); err != nil {
			return err
		}
		if n0, n1 := classes("rmops0"), classes("rmops1"); n0 != 0 || n1 != 3 {
			t.Errorf("after moving to rmops1: %d classes on rmops0, %d on rmops1; want 0 and 3", n0, n1)
		}
		got := collectNow(a)
		if len(got["relaymesh_qos_class_sent_bytes_total"]) != 3 || len(got["relaymesh_qos_class_dropped_packets_total"]) != 3 {
			t.Errorf("metrics: %d byte and %d drop series, want 3 each", len(got["relaymesh_qos_class_sent_bytes_total"]), len(got["relaymesh_qos_class_dropped_packets_total"]))
		}
		if m := got["relaymesh_qos_applied"]; len(m) != 1 || m[0].GetGauge().GetValue() != 1 {
			t.Errorf("relaymesh_qos_applied = %v, want 1", m)
		}
		bad := cfg
		bad.QoS.Interface = "rmnosuch"
		if err := a.setQoS(bad.NetQoS()); err == nil {
			t.Errorf("qos on a missing interface accepted; want an error (refuses start or reload)")
		}
		if n := classes("rmops1"); n != 3 {
			t.Errorf("a refused change removed the tree in force: %d classes", n)
		}
		if err := a.closeOps(); err != nil {
			return err
		}
		if n := classes("rmops1"); n != 0 {
			t.Errorf("after close: %d classes on rmops1, want none", n)
		}
		return nil
	})
}

// TestQoSWithoutNetAdmin: the agent logs one warning, runs on, and
// reports the tree as not applied.
func TestQoSWithoutNetAdmin(t *testing.T) {
	inNewNS(t, func() error {
		if err := addVeth("rmops0"); err != nil {
			return err
		}
		if err := nettest.DropNetAdmin(); err != nil {
			return err
		}
		var logs testmedia.LogBuffer
		a := opsTestAgent(&logs)
		defer a.hub.Close()
		cfg := config.Default()
		cfg.QoS = config.QoSConfig{Enabled: true, Interface: "rmops0", Rate: 100_000_000}
		for _, rate := range []config.Bitrate{100_000_000, 80_000_000} {
			cfg.QoS.Rate = rate
			if err := a.setQoS(cfg.NetQoS()); err != nil {
				return errors.New("setQoS without CAP_NET_ADMIN failed instead of warning: " + err.Error())
			}
		}
		if n := strings.Count(logs.String(), "lacks CAP_NET_ADMIN"); n != 1 {
			t.Errorf("%d CAP_NET_ADMIN warnings, want exactly 1:\n%s", n, logs.String())
		}
		if m := collectNow(a)["relaymesh_qos_applied"]; len(m) != 1 || m[0].GetGauge().GetValue() != 0 {
			t.Errorf("relaymesh_qos_applied = %v, want 0", m)
		}
		return a.closeOps()
	})
}

// TestWebhookReconnectWithinGrace: an ffmpeg publisher is killed and
// publishes again within the reconnect grace: the receiver gets
// stream.published once, stream.reconnected, and stream.unpublished once
// when the stream finally ends, in that order.
func TestWebhookReconnectWithinGrace(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	r := NewHookSink(t)
	cfg := testAgentConfig(t)
	cfg.Limits.ReconnectGrace = config.Duration(time.Hour) // the reconnect cannot miss it
	cfg.Webhooks = config.WebhooksConfig{URL: r.URL(), SecretFile: r.SecretFile}
	a, _ := runAgent(t, cfg)
	url := "rtmp://" + a.listenAddr("rtmp") + "/live/rc"
	src := testmedia.Source{Realtime: true, Duration: time.Minute, GOP: 25}.Defaults()
	has := func(e string) func() bool {
		return func() bool { return slices.Contains(r.Lines(t), e) }
	}

	first := testmedia.Publish(t, context.Background(), src, url)
	testmedia.Eventually(t, 10*time.Second, "stream.published", has(`stream.published {"protocol":"rtmp","stream":"live/rc"}`))
	first.Cmd.Process.Kill()
	testmedia.Eventually(t, 10*time.Second, "the publisher detached (the stream waits in its grace)", func() bool {
		st := a.hub.Stream("live/rc")
		if st == nil {
			return false
		}
		_, live := st.Publisher()
		return !live
	})
	second := testmedia.Publish(t, context.Background(), src, url)
	testmedia.Eventually(t, 10*time.Second, "stream.reconnected", has(`stream.reconnected {"protocol":"rtmp","stream":"live/rc","takeover":false}`))

	// what a reload of limits.reconnect_grace does, so the end comes now
	l := cfg.Limits
	a.hub.SetLimits(l.MaxPublishers, l.MaxReadersPerStream, int64(l.MaxBitrate), l.Takeover, 50*time.Millisecond)
	second.Cmd.Process.Kill()
	testmedia.Eventually(t, 10*time.Second, "stream.unpublished", has(`stream.unpublished {"reason":"publisher gone","stream":"live/rc"}`))
	// events are delivered in order: once a later stream's event is in,
	// any repeat for live/rc would be in too
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed(t, ctx, a.hub, "live/marker", 25)
	testmedia.Eventually(t, 10*time.Second, "the marker stream's stream.published", has(`stream.published {"protocol":"test","stream":"live/marker"}`))
	var got []string
	for _, e := range r.Lines(t) {
		if strings.Contains(e, `"live/rc"`) {
			got = append(got, e)
		}
	}
	want := []string{
		`stream.published {"protocol":"rtmp","stream":"live/rc"}`,
		`stream.reconnected {"protocol":"rtmp","stream":"live/rc","takeover":false}`,
		`stream.unpublished {"reason":"publisher gone","stream":"live/rc"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events of live/rc\n %q\nwant\n %q", got, want)
	}
}

// reloadOpsForTest runs the ops step of a reload alone: prepare, then
// commit when it succeeded.
func reloadOpsForTest(a *Agent, old, next *config.Config) error {
	c, err := a.prepareOps(old, next)
	if err != nil {
		return err
	}
	c.commit()
	return nil
}
