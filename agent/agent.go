// Package agent is a relaymesh node's lifecycle: it loads and validates the
// config, builds the role's components (hub, listeners, cluster, QoS), runs
// them, serves the JSON API and metrics, and reloads on SIGHUP.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/relaymesh/relaymesh/api"
	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/control"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/listeners"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/hls"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// drainTimeout bounds the graceful part of a shutdown.
const drainTimeout = 5 * time.Second

// Agent is one relaymesh node.
type Agent struct {
	path    string
	log     *slog.Logger
	level   *slog.LevelVar
	started time.Time
	hub     *media.Hub
	events  *events.Bus    // the node's one ordered event stream (events.go)
	ls      *listeners.Set // RTMP, HTTP, SRT and API: the listeners a reload may move
	webrtc  *webrtc.Server
	hls     *hls.Server                 // HLS on the HTTP listener; nil when [hls] is off
	access  atomic.Pointer[auth.Policy] // [auth] in force
	cfgMu   sync.Mutex                  // guards cfg
	cfg     *config.Config
	closers []func() error
	runners []func(context.Context) error
	// beforeDrain runs first on shutdown (leave the cluster, move streams
	// away), bounded by each component itself.
	beforeDrain []func()
	// onMissing, appended to by the parts in New (before Run), are called
	// in their own goroutine when a stream is asked for while not live
	// here. Stream changes go through a.events.
	onMissing []func(key string)
	// onAuthorize are further gates on publish and play (flows' own
	// allowlists), asked after the node's allowlist and signed URL.
	onAuthorize []media.Authorizer
	cluster     clusterState // gossip, backbone, edge and center roles: cluster.go
	ops         opsState     // QoS and webhooks: ops.go
	objects     objectsState // flows, relays and tasks: objects.go
	stopping    chan struct{}
	// reloads carries `relaymesh reload` requests from the control socket
	// to Run's loop, which answers on the inner channel.
	reloads chan chan error
	// rtDir is the runtime directory (control.RuntimeDir), "" without one.
	rtDir string
	// preparing is the config a reload is preparing, nil outside one
	// (objectsConfig).
	preparing atomic.Pointer[config.Config]
	// spawn runs a component built after Run started (a rebound
	// listener) under Run's context; nil before Run.
	spawn func(run func(context.Context) error)
	// srtBudget is srt.max_receive_memory, shared by the SRT and the
	// backbone listeners
	srtBudget *srt.Budget
}

// New builds the node's components and binds every listener, so an
// address in use fails here.
func New(cfg *config.Config, path string, logOut io.Writer) (_ *Agent, err error) {
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level, ReplaceAttr: api.MaskLogAttr})).With("node", cfg.Node.ResolveName())
	a := &Agent{path: path, log: log, level: level, cfg: cfg, started: time.Now(), stopping: make(chan struct{}),
		reloads: make(chan chan error), rtDir: control.RuntimeDir()}
	libsrt.SetLogger(log) // libsrt's warnings and the binding's (a connection it closed, and why)
	defer func() {
		// a, not the result (nil here): release what was built so far
		if err != nil {
			a.Close()
		}
	}()
	pol, err := cfg.Auth.Policy()
	if err != nil {
		return nil, err
	}
	a.access.Store(pol)

	hcfg := listeners.HubConfig(cfg)
	a.events = events.New(log)
	a.closers = append(a.closers, a.events.Close) // closers run in reverse: the bus closes last
	hcfg.Events = a.events
	hcfg.OnMissing = func(key string) {
		for _, f := range a.onMissing {
			f(key)
		}
	}
	a.hub = media.NewHub(hcfg, log)
	a.srtBudget = srt.NewBudget("srt.max_receive_memory", int64(cfg.SRT.MaxReceiveMemory))
	log.Info("srt receive memory budget", "max_receive_memory", config.ByteSize(a.srtBudget.Limit()).String(),
		"default", cfg.SRT.MaxReceiveMemory == 0)
	a.ls = listeners.New(listeners.Deps{Hub: a.hub, Log: log, Authorize: a.authorize, Routes: a.httpRoutes, SRTBudget: a.srtBudget,
		SRTStreamOptions: func(action, key string) (srt.StreamOptions, bool) {
			if f := a.objects.flows; f != nil { // srt-listener sources and outputs: their passphrase and latency
				return f.SRTStreamOptions(action, key)
			}
			return srt.StreamOptions{}, false
		},
		NewAPI: a.newAPI, Start: a.start})

	if err := a.ls.Open(listeners.RTMP, cfg); err != nil {
		return nil, err
	}
	if err := a.newWebRTC(cfg); err != nil {
		return nil, err
	}
	if cfg.HLS.Enabled {
		if a.hls, err = hls.New(listeners.HLSConfig(cfg, a.authorize), a.hub, log); err != nil {
			return nil, fmt.Errorf("hls: %w", err)
		}
		a.add(a.hls.Run, a.hls.Close)
	}
	if err := a.ls.Open(listeners.HTTP, cfg); err != nil {
		return nil, err
	}
	if err := a.ls.Open(listeners.SRT, cfg); err != nil {
		return nil, err
	}
	if err := a.newOps(cfg); err != nil {
		return nil, err
	}
	if err := a.newCluster(cfg); err != nil {
		return nil, err
	}
	if err := a.newObjects(cfg); err != nil {
		return nil, err
	}
	if a.rtDir != "" {
		c, err := control.New(a.rtDir, a.requestReload)
		if err != nil {
			return nil, err
		}
		a.add(c.Run, c.Close)
	}
	if err := a.ls.Open(listeners.API, cfg); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Agent) add(run func(context.Context) error, close func() error) {
	a.runners = append(a.runners, run)
	a.closers = append(a.closers, close)
}

// start is add for a component built before or after Run started (a
// listener a reload rebound): after, it runs under Run's context at once.
func (a *Agent) start(run func(context.Context) error, close func() error) {
	if a.spawn == nil {
		a.add(run, close)
		return
	}
	a.closers = append(a.closers, close)
	a.spawn(run)
}

// config returns the config in force.
func (a *Agent) config() *config.Config {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cfg
}

// authorizer is authorize for a listener that hands over the raw query
// string (WebRTC) rather than an Access.
func (a *Agent) authorizer(proto string) func(action, key, query string, remote net.Addr) error {
	return func(action, key, query string, remote net.Addr) error {
		token, err := auth.TokenOf(query)
		if err != nil {
			return err
		}
		return a.authorize(media.Access{Protocol: proto, Action: action, Key: key, Token: token, Remote: remote})
	}
}

// authorize is the single gate every listener calls before a publish or
// play: [auth] (auth.Policy), then the flows' own gates.
func (a *Agent) authorize(req media.Access) error {
	if err := a.access.Load().Check(req.Action, req.Key, req.Token, req.Remote, time.Now()); err != nil {
		return err
	}
	for _, f := range a.onAuthorize {
		if err := f(req); err != nil {
			return err
		}
	}
	return nil
}

// Run runs every component until ctx ends, reloading on SIGHUP. On the
// end of ctx it drains: readers get a clean end of stream, then the
// listeners close.
func (a *Agent) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, len(a.runners)+1)
	var wg sync.WaitGroup
	spawn := func(run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil {
				select {
				case errc <- err:
				default:
					a.log.Error("component failed", "err", err)
				}
			}
		}()
	}
	for _, run := range a.runners {
		spawn(run)
	}
	a.spawn = spawn
	a.log.Info("relaymesh started", "version", Version, "role", a.cfg.Node.Role, "site", a.cfg.Node.Site,
		"rtmp", a.listenAddr("rtmp"), "http", a.listenAddr("http"), "srt", a.listenAddr("srt"), "api", a.listenAddr("api"), "webrtc_udp", a.listenAddr("webrtc"))
	daemon.SdNotify(false, daemon.SdNotifyReady)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var watchdog <-chan time.Time
	if iv, err := daemon.SdWatchdogEnabled(false); err == nil && iv > 0 {
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		watchdog = t.C
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			a.log.Error("component failed", "err", err)
			break loop
		case <-hup:
			a.Reload()
		case reply := <-a.reloads:
			reply <- a.Reload()
		case <-watchdog:
			daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	a.log.Info("shutting down", "drain_timeout", drainTimeout.String())
	close(a.stopping)
	for _, f := range a.beforeDrain {
		f()
	}
	a.drain()
	cancel()
	wg.Wait()
	a.Close()
	a.log.Info("stopped")
	return runErr
}

// drain ends every stream so readers receive what was sent and a clean
// end, and waits (bounded) for the connections of every protocol (RTMP,
// HTTP-FLV, SRT) to finish, so none is cut mid-frame by the exit.
func (a *Agent) drain() {
	a.hub.Close()
	deadline := time.Now().Add(drainTimeout)
	for {
		rtmpN, flvN, srtN := a.ls.OpenConns()
		if rtmpN+flvN+srtN == 0 {
			a.log.Info("drained")
			return
		}
		if time.Now().After(deadline) {
			a.log.Warn("drain timed out; closing the connections left", "rtmp", rtmpN, "httpflv", flvN, "srt", srtN)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close releases everything. It is idempotent and safe after a failed New.
func (a *Agent) Close() error {
	if a == nil {
		return nil
	}
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	if a.ls != nil {
		a.ls.Close()
	}
	if a.hub != nil {
		a.hub.Close()
	}
	return errors.Join(errs...)
}

// Reload loads the config file again and applies what changed. A bad
// config is refused and the old one stays in force.
func (a *Agent) Reload() error {
	daemon.SdNotify(false, daemon.SdNotifyReloading)
	defer daemon.SdNotify(false, daemon.SdNotifyReady)
	err := a.reload()
	if err != nil {
		a.log.Error("reload refused; the old config stays in force", "problems", config.Problems(err))
		return err
	}
	return nil
}

// change is one component's prepared part of a reload: prepare did
// everything that can fail (bound sockets, read files, checked against
// the live state) and changed nothing in force; commit only swaps and
// cannot fail; abort releases what prepare took (nil when nothing).
type change struct {
	commit, abort func()
}

// reload is one transaction: every component prepares its part of next,
// and only when all succeeded does any commit. A refusal leaves the old
// config in force everywhere (listeners where they were, no object
// touched), so the next valid reload succeeds.
func (a *Agent) reload() error {
	next, err := config.LoadFile(a.path)
	if err == nil {
		err = next.CheckFiles()
	}
	if err != nil {
		return err
	}
	old := a.config()
	d := config.Diff(old, next)
	if len(d.NeedsRestart) > 0 {
		return fmt.Errorf("these settings need a restart (systemctl restart relaymesh): %v", d.NeedsRestart)
	}
	// in order: the steps with side effects that prepare must undo on a
	// later refusal (QoS on the interface, objects) come last
	steps := []struct {
		name    string
		prepare func(old, next *config.Config) (change, error)
	}{
		{"access", a.prepareAccess},
		{"listeners", func(_, next *config.Config) (change, error) { return a.prepareListeners(next, d.Listeners) }},
		{"settings", a.prepareSettings},
		{"cluster", a.prepareCluster},
		{"ops", a.prepareOps},
		{"objects", a.prepareObjects},
		{"qos", a.prepareQoS},
	}
	a.preparing.Store(next)
	defer a.preparing.Store(nil)
	var done []change
	for _, st := range steps {
		c, err := st.prepare(old, next)
		if err != nil {
			a.preparing.Store(nil) // the old objects come back under the old limits
			for i := len(done) - 1; i >= 0; i-- {
				if done[i].abort != nil {
					done[i].abort()
				}
			}
			return err
		}
		done = append(done, c)
	}
	for _, c := range done {
		if c.commit != nil {
			c.commit()
		}
	}
	a.cfgMu.Lock()
	a.cfg = next
	a.cfgMu.Unlock()
	a.advertise(next)
	a.log.Info("config reloaded", "changed", d.Changed())
	return nil
}

// prepareAccess loads the signing key and allowlists of [auth].
func (a *Agent) prepareAccess(_, next *config.Config) (change, error) {
	pol, err := next.Auth.Policy()
	if err != nil {
		return change{}, err
	}
	return change{commit: func() { a.access.Store(pol) }}, nil
}

// prepareSettings checks the settings the running listeners and the hub
// take without a new socket: limits, timeouts, SRT latency, passphrases,
// [[srt_stream]], srt.max_connections and srt.max_receive_memory (for the
// connections after it), the log level. A listener that
// moves (prepareListeners) is built from next already.
func (a *Agent) prepareSettings(old, next *config.Config) (change, error) {
	lsCommit, err := a.ls.PrepareSettings(old, next)
	if err != nil {
		return change{}, fmt.Errorf("srt: %w", err)
	}
	return change{commit: func() {
		a.level.Set(next.SlogLevel())
		h := listeners.HubConfig(next)
		a.hub.SetLimits(h.MaxPublishers, h.MaxReaders, h.MaxBitrate, h.Takeover, h.ReconnectGrace)
		a.hub.SetMaxReaderLag(h.MaxReaderLag)
		lsCommit()
		a.srtBudget.SetLimit(int64(next.SRT.MaxReceiveMemory))
		if a.hls != nil {
			a.hls.SetConfig(listeners.HLSConfig(next, a.authorize))
		}
		if a.webrtc != nil {
			a.webrtc.SetConfig(a.webrtcConfig(next))
		}
	}}, nil
}

// listenAddr returns the bound address of a listener, or "" when it is off.
func (a *Agent) listenAddr(which string) string {
	if which == "webrtc" {
		if a.webrtc == nil {
			return ""
		}
		return a.webrtc.UDPAddr().String()
	}
	return a.ls.Addr(which)
}

// listenerAddrs are the media listeners' addresses as the cluster is told
// them, or as bound on a node outside a cluster.
func (a *Agent) listenerAddrs() gossip.Addrs {
	if g := a.cluster.gossip; g != nil {
		return g.LocalMeta().Addrs
	}
	return gossip.Addrs{RTMP: a.listenAddr("rtmp"), SRT: a.listenAddr("srt"), HTTPFLV: a.listenAddr("http")}
}

// prepareListeners binds a new socket for every listener whose address
// changed (listeners.Set.Prepare).
func (a *Agent) prepareListeners(next *config.Config, changed []string) (change, error) {
	commit, abort, err := a.ls.Prepare(next, changed)
	if err != nil {
		return change{}, err
	}
	return change{commit: commit, abort: abort}, nil
}
