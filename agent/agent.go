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
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/relaymesh/relaymesh/api"
	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/control"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/hls"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
	"github.com/relaymesh/relaymesh/media/webrtc"
	"github.com/relaymesh/relaymesh/netutil"
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
	events  *events.Bus // the node's one ordered event stream (events.go)
	rtmp    *rtmp.Server
	httpflv *httpflv.Server
	webrtc  *webrtc.Server
	hls     *hls.Server // HLS on the HTTP listener; nil when [hls] is off
	srt     *srt.Server
	api     *api.Server
	access  atomic.Pointer[auth.Policy] // [auth] in force
	cfgMu   sync.Mutex
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
	// rtDir is the runtime directory ($RUNTIME_DIRECTORY), "" without one.
	rtDir string
	// spareSRT is an SRT listener a refused reload bound on spareSRTAddr
	// and never ran (srtFor).
	spareSRT     *srt.Server
	spareSRTAddr string
	// preparing is the config a reload is preparing, nil outside one
	// (objectsConfig).
	preparing atomic.Pointer[config.Config]
	// spawn runs a component built after Run started (a rebound
	// listener) under Run's context; nil before Run.
	spawn func(run func(context.Context) error)
}

// New builds the node's components and binds every listener, so an
// address in use fails here.
func New(cfg *config.Config, path string, logOut io.Writer) (_ *Agent, err error) {
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level, ReplaceAttr: maskLogAttr})).With("node", cfg.Node.ResolveName())
	a := &Agent{path: path, log: log, level: level, cfg: cfg, started: time.Now(), stopping: make(chan struct{}),
		reloads: make(chan chan error), rtDir: agentRuntimeDir()}
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

	hcfg := media.DefaultHubConfig()
	applyLimits(&hcfg, cfg)
	hcfg.NewTSMuxer = func() media.Remuxer { return mpegts.NewMuxer() }
	hcfg.NewTSDemuxer = func() media.Remuxer { return mpegts.NewFLVRemuxer() }
	a.events = events.New(log)
	a.closers = append(a.closers, a.events.Close) // closers run in reverse: the bus closes last
	hcfg.Events = a.events
	hcfg.OnMissing = func(key string) {
		for _, f := range a.onMissing {
			f(key)
		}
	}
	a.hub = media.NewHub(hcfg, log)

	if cfg.RTMP.Listen != "" {
		a.rtmp, err = rtmp.New(a.rtmpConfig(cfg), a.hub, log)
		if err != nil {
			return nil, netutil.ListenError("rtmp.listen", cfg.RTMP.Listen, err)
		}
		a.add(a.rtmp.Run, a.rtmp.Close)
	}
	if err := a.newWebRTC(cfg); err != nil {
		return nil, err
	}
	if cfg.HLS.Enabled {
		if a.hls, err = hls.New(a.hlsConfig(cfg), a.hub, log); err != nil {
			return nil, fmt.Errorf("hls: %w", err)
		}
		a.add(a.hls.Run, a.hls.Close)
	}
	if cfg.HTTP.Listen != "" {
		a.httpflv, err = httpflv.New(a.httpflvConfig(cfg), a.hub, log)
		if err != nil {
			return nil, netutil.ListenError("http.listen", cfg.HTTP.Listen, err)
		}
		a.add(a.httpflv.Run, a.httpflv.Close)
	}
	if err := a.newSRT(cfg); err != nil {
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
	if cfg.API.Listen != "" {
		a.api, err = a.newAPI(cfg.API.Listen)
		if err != nil {
			return nil, netutil.ListenError("api.listen", cfg.API.Listen, err)
		}
		a.add(a.api.Run, a.api.Close)
	}
	return a, nil
}

func (a *Agent) add(run func(context.Context) error, close func() error) {
	a.runners = append(a.runners, run)
	a.closers = append(a.closers, close)
}

// config returns the config in force.
func (a *Agent) config() *config.Config {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cfg
}

func applyLimits(h *media.HubConfig, cfg *config.Config) {
	l := cfg.Limits
	h.MaxPublishers = l.MaxPublishers
	h.MaxReaders = l.MaxReadersPerStream
	h.MaxBitrate = int64(l.MaxBitrate)
	h.ReconnectGrace = l.ReconnectGrace.Duration()
	h.Takeover = l.Takeover
	if d := l.MaxReaderLag.Duration(); d > 0 {
		h.MaxReaderLag = d
	}
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

func (a *Agent) rtmpConfig(cfg *config.Config) rtmp.Config {
	return rtmp.Config{
		Listen:           cfg.RTMP.Listen,
		HandshakeTimeout: cfg.Limits.HandshakeTimeout.Duration(),
		ReadTimeout:      cfg.Limits.ReadTimeout.Duration(),
		WriteTimeout:     cfg.Limits.WriteTimeout.Duration(),
		MaxConnections:   cfg.Limits.MaxConnections,
		PlayWait:         center.PlayWaitOf(cfg),
		WriteCoalesce:    cfg.Limits.WriteCoalesce.Duration(),
		Authorize:        a.authorize,
	}
}

func (a *Agent) httpflvConfig(cfg *config.Config) httpflv.Config {
	return httpflv.Config{
		Listen:         cfg.HTTP.Listen,
		WriteTimeout:   cfg.Limits.WriteTimeout.Duration(),
		HeaderTimeout:  cfg.Limits.HandshakeTimeout.Duration(),
		MaxConnections: cfg.Limits.MaxConnections,
		PlayWait:       center.PlayWaitOf(cfg),
		WriteCoalesce:  cfg.Limits.WriteCoalesce.Duration(),
		Authorize:      a.authorize,
		Next:           a.httpRoutes(),
	}
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
		rtmpN, flvN, srtN := a.openConns()
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

// openConns counts the open media connections per listener.
func (a *Agent) openConns() (rtmpN, flvN, srtN int) {
	l := a.listeners()
	if l.rtmp != nil {
		rtmpN = l.rtmp.ConnCount()
	}
	if l.httpflv != nil {
		flvN = l.httpflv.ConnCount()
	}
	if l.srt != nil {
		srtN = len(l.srt.Stats())
	}
	return rtmpN, flvN, srtN
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
	if a.spareSRT != nil {
		a.spareSRT.Close()
		a.spareSRT = nil
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
// [[srt_stream]] and srt.max_connections, the log level. A listener that
// moves (prepareListeners) is built from next already.
func (a *Agent) prepareSettings(old, next *config.Config) (change, error) {
	var srtCommit func()
	if a.srt != nil && next.SRT.Listen == old.SRT.Listen {
		var err error
		if srtCommit, err = a.srt.Prepare(a.srtConfig(next)); err != nil {
			return change{}, fmt.Errorf("srt: %w", err)
		}
	}
	return change{commit: func() {
		a.level.Set(next.SlogLevel())
		h := media.DefaultHubConfig()
		applyLimits(&h, next)
		a.hub.SetLimits(h.MaxPublishers, h.MaxReaders, h.MaxBitrate, h.Takeover, h.ReconnectGrace)
		a.hub.SetMaxReaderLag(h.MaxReaderLag)
		if srtCommit != nil {
			srtCommit()
		}
		if l := a.listeners(); l.rtmp != nil {
			l.rtmp.SetConfig(a.rtmpConfig(next))
		}
		if l := a.listeners(); l.httpflv != nil {
			l.httpflv.SetConfig(a.httpflvConfig(next))
		}
		if a.hls != nil {
			a.hls.SetConfig(a.hlsConfig(next))
		}
		if a.webrtc != nil {
			a.webrtc.SetConfig(a.webrtcConfig(next))
		}
	}}, nil
}

// listeners is a consistent view of the listener pointers, which a
// reload may swap (rebind) while the API or a scrape reads them.
type listeners struct {
	rtmp    *rtmp.Server
	httpflv *httpflv.Server
	srt     *srt.Server
	api     *api.Server
}

func (a *Agent) listeners() listeners {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return listeners{a.rtmp, a.httpflv, a.srt, a.api}
}

// listenAddr returns the bound address of a listener, or "" when it is off.
func (a *Agent) listenAddr(which string) string {
	l := a.listeners()
	switch {
	case which == "rtmp" && l.rtmp != nil:
		return l.rtmp.Addr().String()
	case which == "http" && l.httpflv != nil:
		return l.httpflv.Addr().String()
	case which == "srt" && l.srt != nil:
		return l.srt.Addr().String()
	case which == "api" && l.api != nil:
		return l.api.Addr().String()
	case which == "webrtc" && a.webrtc != nil:
		return a.webrtc.UDPAddr().String()
	}
	return ""
}

// listenerAddrs are the media listeners' addresses as the cluster is told
// them, or as bound on a node outside a cluster.
func (a *Agent) listenerAddrs() gossip.Addrs {
	if g := a.cluster.gossip; g != nil {
		return g.LocalMeta().Addrs
	}
	return gossip.Addrs{RTMP: a.listenAddr("rtmp"), SRT: a.listenAddr("srt"), HTTPFLV: a.listenAddr("http")}
}

// checkWarnings are problems of the machine, not of the config, that
// `relaymesh check` reports.
func checkWarnings(cfg *config.Config) []string {
	return slices.Concat(cfg.FileWarnings(), srtWarnings(cfg), cfg.QoSWarnings())
}

// prepareListeners binds a new socket for every listener whose address
// changed (an address in use refuses the reload with nothing changed);
// commit starts each new server and only then closes the old one, abort
// closes the new sockets. Connections on an old listener end with it;
// every other listener and connection is untouched.
func (a *Agent) prepareListeners(next *config.Config, changed []string) (change, error) {
	type move struct {
		name, from string
		run        func(context.Context) error    // nil when the listener is turned off
		close      func() error                   // on abort
		closeRun   func() error                   // on shutdown, once it runs
		swap       func() (closeOld func() error) // installs the new server, returns the old one's Close
	}
	var moves []move
	abort := func() {
		for _, m := range moves {
			if m.close != nil {
				m.close()
			}
		}
	}
	for _, name := range changed {
		m := move{name: name, from: a.listenAddr(name)}
		var err error
		switch name {
		case "rtmp":
			var s *rtmp.Server
			if next.RTMP.Listen != "" {
				if s, err = rtmp.New(a.rtmpConfig(next), a.hub, a.log); err == nil {
					m.run, m.close, m.closeRun = s.Run, s.Close, s.Close
				}
				err = netutil.ListenError("rtmp.listen", next.RTMP.Listen, err)
			}
			m.swap = func() func() error { old := a.rtmp; a.rtmp = s; return closerOf(old) }
		case "http":
			var s *httpflv.Server
			if next.HTTP.Listen != "" {
				if s, err = httpflv.New(a.httpflvConfig(next), a.hub, a.log); err == nil {
					m.run, m.close, m.closeRun = s.Run, s.Close, s.Close
				}
				err = netutil.ListenError("http.listen", next.HTTP.Listen, err)
			}
			m.swap = func() func() error { old := a.httpflv; a.httpflv = s; return closerOf(old) }
		case "srt":
			var s *srt.Server
			if next.SRT.Listen != "" {
				if s, err = a.srtFor(a.srtConfig(next)); err == nil {
					m.run, m.close, m.closeRun = s.Run, func() error { a.keepSpareSRT(s, next.SRT.Listen); return nil }, s.Close
				}
				err = netutil.ListenError("srt.listen", next.SRT.Listen, err)
			}
			m.swap = func() func() error { old := a.srt; a.srt = s; return closerOf(old) }
		case "api":
			var s *api.Server
			if next.API.Listen != "" {
				if s, err = a.newAPI(next.API.Listen); err == nil {
					m.run, m.close, m.closeRun = s.Run, s.Close, s.Close
				}
				err = netutil.ListenError("api.listen", next.API.Listen, err)
			}
			m.swap = func() func() error { old := a.api; a.api = s; return closerOf(old) }
		default:
			continue
		}
		if err != nil {
			abort()
			return change{}, err
		}
		moves = append(moves, m)
	}
	commit := func() {
		for _, m := range moves {
			if m.run != nil {
				a.closers = append(a.closers, m.closeRun)
				if a.spawn != nil {
					a.spawn(m.run)
				} else {
					a.runners = append(a.runners, m.run)
				}
			}
			a.cfgMu.Lock()
			closeOld := m.swap()
			a.cfgMu.Unlock()
			if closeOld != nil {
				closeOld()
			}
			a.log.Info("listener moved", "listener", m.name, "from", m.from, "to", a.listenAddr(m.name))
		}
	}
	return change{commit: commit, abort: abort}, nil
}

// srtFor returns an SRT server bound to cfg.Listen: the spare one a
// refused reload left on that address, else a new one. libsrt releases
// the UDP port of a closed listener only later, in its own thread, so
// closing a prepared SRT listener on a refusal would leave its address in
// use for the next reload.
func (a *Agent) srtFor(cfg srt.Config) (*srt.Server, error) {
	if sp := a.spareSRT; sp != nil {
		a.spareSRT = nil
		if a.spareSRTAddr == cfg.Listen && sp.SetConfig(cfg) == nil {
			return sp, nil
		}
		sp.Close()
	}
	return srt.New(cfg, a.hub, a.log)
}

// keepSpareSRT keeps s, prepared for addr by a refused reload and never
// run, for the next reload's srtFor (closed with the agent).
func (a *Agent) keepSpareSRT(s *srt.Server, addr string) {
	if a.spareSRT != nil {
		a.spareSRT.Close()
	}
	a.spareSRT, a.spareSRTAddr = s, addr
}

// closerOf returns c.Close, or nil when c is a nil pointer.
func closerOf[T interface{ Close() error }](c T) func() error {
	if reflect.ValueOf(c).IsNil() {
		return nil
	}
	return c.Close
}
