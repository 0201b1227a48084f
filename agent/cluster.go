package agent

// This file wires the cluster: gossip membership, edge uplinks, center
// backbone, on-demand pulls, /v1/nodes, /v1/locate into the agent.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/srt"
)

const (
	// clusterPlayWait is how long a center's players wait for a stream
	// that is not live here while it is pulled from another center.
	clusterPlayWait = 5 * time.Second
	// leaveTimeout bounds the spread of the leave message on shutdown.
	leaveTimeout = 2 * time.Second
	// leaveMoveWait bounds the wait for edges to move their uplinks, and
	// other centers their pulls, away from a leaving center.
	leaveMoveWait = 5 * time.Second
	// leaveSettle is the least time a leaving center keeps its edges'
	// uplinks, for their make-before-break moves to start elsewhere.
	leaveSettle = 2 * time.Second
	// locateTokenTTL is how long the signed ingest URLs of locate last.
	locateTokenTTL = 6 * time.Hour
)

// clusterState is the agent's cluster state (see extensions.go).
type clusterState struct {
	gossip  *gossip.Cluster
	center  *center.Center
	uplinks *edge.Uplinks
	locs    atomic.Pointer[gossip.LocationTable]
}

// newCluster builds the cluster components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newCluster(cfg *Config) error {
	cc := cfg.Cluster
	if !cc.Enabled {
		return nil
	}
	cs := &a.ext.cluster
	table, err := cfg.LocationTable()
	if err != nil {
		return err
	}
	cs.locs.Store(&table)
	pass, err := cc.LoadBackbonePassphrase()
	if err != nil {
		return fmt.Errorf("cluster.backbone_key_file: %w", err)
	}

	gc := gossip.DefaultConfig()
	gc.NodeName = cfg.Node.ResolveName()
	host, port, err := splitHostPort(cc.GossipBind())
	if err != nil {
		return fmt.Errorf("cluster.bind: %w", err)
	}
	gc.BindAddr, gc.BindPort = host, port
	if gc.BindAddr == "" {
		gc.BindAddr = "0.0.0.0"
	}
	if cc.Advertise != "" {
		if ap, err := netip.ParseAddrPort(cc.Advertise); err == nil {
			gc.AdvertiseAddr, gc.AdvertisePort = ap.Addr().String(), int(ap.Port())
		} else {
			gc.AdvertiseAddr = cc.Advertise
		}
	}
	gc.Seeds = cc.Seeds
	gc.KeyFile = cc.KeyFile
	gc.Meta = gossip.NodeMeta{
		Role: gossip.Role(cfg.Node.Role), Site: cfg.Node.Site, Region: cfg.Node.Region,
		Lat: cfg.Node.Lat, Lon: cfg.Node.Lon, Version: Version,
		Capacity: gossip.Capacity{MaxStreams: cc.Capacity.MaxStreams, MaxMbps: cc.Capacity.MaxMbps},
	}
	gc.OnEvent = a.clusterEvent
	if cc.KeyFile != "" {
		if _, err := gossip.LoadKey(cc.KeyFile); err != nil {
			return fmt.Errorf("cluster.key_file: %w", err)
		}
	}
	g, err := gossip.New(gc, a.log)
	if err != nil {
		return listenErr("cluster.bind", cc.GossipBind(), err)
	}
	cs.gossip = g
	a.add(func(ctx context.Context) error {
		go func() {
			if len(cc.Seeds) == 0 {
				return
			}
			if err := g.Join(cc.Seeds); err != nil {
				a.log.Error("cluster join failed; retrying while alone", "seeds", cc.Seeds, "err", err)
			} else {
				a.log.Info("joined the cluster", "members", len(g.Members()))
			}
		}()
		return g.Run(ctx)
	}, g.Close)

	latency := func(rtt time.Duration) time.Duration { return cc.Latency.For(rtt) }
	if cfg.Node.RunsCenter() {
		listen := ""
		if cfg.Node.Role == RoleCenter || cc.BackboneListen != "" {
			listen = cc.BackboneAddr()
		}
		c, err := center.New(center.Config{
			Listen: listen, Passphrase: pass, Latency: latency, DSCP: cc.DSCPMark(),
			IdleTimeout: BackboneIdleTimeout, ReadTimeout: cfg.Limits.ReadTimeout.Duration(),
			PlayWait: clusterPlayWait,
		}, a.hub, g, a.log)
		if err != nil {
			return fmt.Errorf("cluster.backbone_listen: %w", err)
		}
		cs.center = c
		a.add(c.Run, c.Close)
		a.subscribe("center", c.HandleEvent)
		a.onMissing = append(a.onMissing, c.Missing)
	}
	if cfg.Node.Role == RoleEdge {
		u, err := edge.New(a.uplinkConfig(cfg, pass), a.hub, g, a.log)
		if err != nil {
			return err
		}
		cs.uplinks = u
		a.add(u.Run, u.Close)
		a.subscribe("edge", u.HandleEvent)
	}

	meta := g.LocalMeta()
	meta.Addrs = a.clusterAddrs(cfg, g.Addr().Addr())
	if err := g.SetMeta(meta); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	a.add(a.reportLoad, func() error { return nil })
	a.beforeDrain = append(a.beforeDrain, a.leaveCluster)
	return nil
}

func splitHostPort(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return h, n, nil
}

func (a *Agent) uplinkConfig(cfg *Config, pass string) edge.Config {
	cc := cfg.Cluster
	return edge.Config{
		Routes: RoutesOf(cfg.Routes), Passphrase: pass, DSCP: cc.DSCPMark(), IdleTimeout: BackboneIdleTimeout,
		Latency:    func(rtt time.Duration) time.Duration { return cc.Latency.For(rtt) },
		Events:     a.events,
		Redundancy: RedundancyOf(cfg.Routes),
	}
}

// RedundancyOf converts the [[route]] tables' redundancy for the edge.
func RedundancyOf(rs []RouteConfig) []edge.Redundancy {
	out := make([]edge.Redundancy, 0, len(rs))
	for _, r := range rs {
		out = append(out, edge.Redundancy{Pattern: r.Pattern, Dual: r.Redundancy == "dual", Window: r.RedundancyWindow.Duration()})
	}
	return out
}

// clusterAddrs are the addresses this node advertises: the listeners'
// ports on the gossip address.
func (a *Agent) clusterAddrs(cfg *Config, ip netip.Addr) gossip.Addrs {
	port := func(addr net.Addr) string {
		if addr == nil {
			return ""
		}
		_, p, err := net.SplitHostPort(addr.String())
		if err != nil {
			return ""
		}
		return net.JoinHostPort(ip.String(), p)
	}
	var ad gossip.Addrs
	if a.rtmp != nil {
		ad.RTMP = port(a.rtmp.Addr())
	}
	if a.srt != nil {
		ad.SRT = port(a.srt.Addr())
	}
	if a.httpflv != nil {
		ad.HTTPFLV = port(a.httpflv.Addr())
	}
	if cfg.API.Listen != "" && !cfgIsLoopback(cfg.API.Listen) {
		if _, p, err := net.SplitHostPort(cfg.API.Listen); err == nil {
			ad.API = net.JoinHostPort(ip.String(), p)
		}
	}
	if c := a.ext.cluster.center; c != nil && c.Addr() != nil {
		ad.Backbone = port(c.Addr())
	}
	return ad
}

// clusterEvent logs membership changes and publishes them on the node's
// event bus (gossip calls it in order, from one goroutine); the edge
// uplinks follow the bus to re-route away from a center that failed or
// left.
func (a *Agent) clusterEvent(e gossip.Event) {
	level := slog.LevelInfo
	if e.Type == gossip.EventUpdate {
		level = slog.LevelDebug // load changes, every few seconds
	}
	a.log.Log(context.Background(), level, "cluster member "+e.Type.String(), "member", e.Member.Name, "role", string(e.Member.Meta.Role),
		"site", e.Member.Meta.Site, "streams_dropped", len(e.Streams))
	m := events.Member{Name: e.Member.Name, Role: string(e.Member.Meta.Role), Site: e.Member.Meta.Site,
		Region: e.Member.Meta.Region, Addr: e.Member.Addr.String()}
	switch e.Type {
	case gossip.EventJoin:
		a.events.Publish(events.MemberJoined{Member: m})
	case gossip.EventLeave:
		a.events.Publish(events.MemberLeft{Member: m, Streams: e.Streams})
	case gossip.EventFailed:
		a.events.Publish(events.MemberFailed{Member: m, Streams: e.Streams})
	}
}

// reportLoad feeds gossip the node's load from the hub every second.
func (a *Agent) reportLoad(ctx context.Context) error {
	g := a.ext.cluster.gossip
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var l gossip.Load
		for _, st := range a.hub.Streams() {
			r := st.Meter.Rates()
			mbps := float64(r.VideoBitrate+r.AudioBitrate) / 1e6
			l.Streams++
			l.MbpsIn += mbps
			l.MbpsOut += mbps * float64(st.ReaderCount()) // uplinks and pulls count as readers
		}
		l.MbpsIn, l.MbpsOut = round2(l.MbpsIn), round2(l.MbpsOut)
		g.SetLoad(l)
	}
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// leaveCluster announces the leave first, so edges move their uplinks to
// another center while this one still serves (make-before-break), then
// waits (bounded) until no edge pushes here and no other center pulls
// from here any more: their pulls follow the directory to the uplinks'
// new centers, also make-before-break. Only then are its own players
// ended (drain).
func (a *Agent) leaveCluster() {
	cs := &a.ext.cluster
	if cs.gossip == nil {
		return
	}
	start := time.Now()
	if err := cs.gossip.Leave(leaveTimeout); err != nil {
		a.log.Warn("cluster leave", "err", err)
	}
	if cs.center != nil && cs.center.Backbone() != nil {
		// Edges start their new uplinks elsewhere at once and keep the
		// old ones here running; other centers' pulls from here follow
		// the directory to the new hosts. Wait until no center pulls from
		// here, and until the uplinks' moves had time to start.
		deadline := time.Now().Add(leaveMoveWait)
		settle := time.Now().Add(leaveSettle)
		for time.Now().Before(deadline) {
			up, rd := backboneLinks(cs.center.Backbone())
			if rd == 0 && (up == 0 || time.Now().After(settle)) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, rd := backboneLinks(cs.center.Backbone()); rd > 0 {
			a.log.Warn("backbone links still open after the leave wait; closing them", "pulls", rd, "waited", leaveMoveWait.String())
		}
	}
	a.log.Info("left the cluster", "took", time.Since(start).Round(time.Millisecond).String())
}

// backboneLinks counts the backbone listener's uplinks (publishers) and
// the pulls other centers read from it.
func backboneLinks(s *srt.Server) (uplinks, pulls int) {
	for _, st := range s.Stats() {
		if st.Role == srt.ActionPublish {
			uplinks++
		} else {
			pulls++
		}
	}
	return uplinks, pulls
}

// prepareCluster reads the location table and the backbone key of next
// (its keys that need a restart were refused before, by Diff); commit
// puts the table, the uplink routes and the capacity in force.
func (a *Agent) prepareCluster(_, next *Config) (change, error) {
	cs := &a.ext.cluster
	if cs.gossip == nil {
		return change{}, nil
	}
	table, err := next.LocationTable()
	if err != nil {
		return change{}, err
	}
	pass, err := next.Cluster.LoadBackbonePassphrase()
	if err != nil {
		return change{}, fmt.Errorf("cluster.backbone_key_file: %w", err)
	}
	return change{commit: func() {
		cs.locs.Store(&table)
		if cs.uplinks != nil {
			cs.uplinks.SetConfig(a.uplinkConfig(next, pass))
		}
	}}, nil
}

// advertise tells the cluster what this node offers under cfg: its
// capacity and the listeners' addresses as bound now, so a moved listener
// is advertised (and located) at its new port.
func (a *Agent) advertise(cfg *Config) {
	g := a.ext.cluster.gossip
	if g == nil {
		return
	}
	m := g.LocalMeta()
	m.Capacity = gossip.Capacity{MaxStreams: cfg.Cluster.Capacity.MaxStreams, MaxMbps: cfg.Cluster.Capacity.MaxMbps}
	m.Addrs = a.clusterAddrs(cfg, g.Addr().Addr())
	if reflect.DeepEqual(m, g.LocalMeta()) {
		return
	}
	if err := g.SetMeta(m); err != nil {
		a.log.Error("cluster: the new addresses and capacity are not advertised", "err", err)
	}
}

// routesCluster registers the cluster API endpoints on s.mux.
func (s *apiServer) routesCluster() {
	s.mux.HandleFunc("GET /v1/nodes", s.nodes)
	s.mux.HandleFunc("GET /v1/locate", s.locate)
	s.mux.HandleFunc("GET /v1/directory", s.directory)
	s.mux.HandleFunc("GET /v1/links", s.links)
}

func (s *apiServer) clusterOff(w http.ResponseWriter) bool {
	if s.a.ext.cluster.gossip == nil {
		writeError(w, http.StatusNotFound, "cluster_disabled", "this node is not in a cluster: set [cluster] enabled = true", "")
		return true
	}
	return false
}

func (s *apiServer) nodes(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	out := []client.Node{}
	for _, m := range s.a.ext.cluster.gossip.Members() {
		v := client.Node{
			Name: m.Name, Role: string(m.Meta.Role), Site: m.Meta.Site, Region: m.Meta.Region,
			State: m.State.String(), Local: m.Local,
			Streams: m.Meta.Load.Streams, MbpsIn: m.Meta.Load.MbpsIn, MbpsOut: m.Meta.Load.MbpsOut,
			Version: m.Meta.Version, Updated: m.Updated,
			Addrs: map[string]string{},
		}
		v.Capacity = client.Capacity{MaxStreams: m.Meta.Capacity.MaxStreams, MaxMbps: m.Meta.Capacity.MaxMbps}
		if m.RTTKnown && !m.Local {
			ms := float64(m.RTT.Microseconds()) / 1000
			v.RTTMs = &ms
		} else if m.Local {
			zero := 0.0
			v.RTTMs = &zero
		}
		if !m.MeasuredAt.IsZero() && !m.Local {
			ms := float64(m.MeasuredRTT.Microseconds()) / 1000
			v.PingMs = &ms
		}
		for k, a := range map[string]string{"gossip": m.Addr.String(), "rtmp": m.Meta.Addrs.RTMP, "srt": m.Meta.Addrs.SRT,
			"http": m.Meta.Addrs.HTTPFLV, "api": m.Meta.Addrs.API, "backbone": m.Meta.Addrs.Backbone} {
			if a != "" {
				v.Addrs[k] = a
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, client.Nodes{Node: s.a.ext.cluster.gossip.Name(), Nodes: out})
}

func (s *apiServer) directory(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	out := client.Directory{Streams: []client.DirectoryEntry{}}
	for _, e := range s.a.ext.cluster.gossip.Directory() {
		if !e.Deleted {
			out.Streams = append(out.Streams, client.DirectoryEntry{Stream: e.Stream, Node: e.Node, Version: e.Version, Updated: e.Updated})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// links lists this node's backbone links: edge uplinks, on-demand pulls
// and the backbone listener's connections.
func (s *apiServer) links(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	cs := &s.a.ext.cluster
	out := client.Links{Uplinks: []edge.Status{}, Pulls: []center.PullStatus{}, Backbone: []srt.ConnStats{}}
	if cs.uplinks != nil {
		out.Uplinks = cs.uplinks.Streams()
		out.DualUplinks = cs.uplinks.DualStreams()
	}
	if cs.center != nil {
		out.Pulls = cs.center.Pulls()
		out.Dual = cs.center.Duals()
		if b := cs.center.Backbone(); b != nil {
			out.Backbone = b.Stats()
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *apiServer) locate(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	q := r.URL.Query()
	app, name := q.Get("app"), q.Get("stream")
	key := app + "/" + name
	if err := checkStreamKey(key); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "app and stream must name a stream, e.g. app=live&stream=cam1", "stream")
		return
	}
	clientStr := q.Get("client")
	if clientStr == "" {
		clientStr = r.RemoteAddr
	}
	addr, err := parseClient(clientStr)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("client: %q is not an IP address", clientStr), "client")
		return
	}
	cs := &s.a.ext.cluster
	table := *cs.locs.Load()
	edges, err := cs.gossip.Locate(addr, table)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "no_edge", err.Error(), "")
		return
	}
	loc, found := table.Lookup(addr)
	pol := s.a.access.Load()
	token := ""
	if pol.publishAuth && s.locateSigns(r) {
		token = auth.Sign(pol.key, auth.ActionPublish, key, time.Now().Add(locateTokenTTL))
	}
	views := make([]client.Ingest, 0, 3)
	for _, m := range edges[:min(3, len(edges))] {
		v := client.Ingest{Node: m.Name, Site: m.Meta.Site}
		if m.Meta.Addrs.RTMP != "" {
			v.RTMP = "rtmp://" + m.Meta.Addrs.RTMP + "/" + key
			if token != "" {
				v.RTMP += "?" + token
			}
		}
		if m.Meta.Addrs.SRT != "" {
			sid := "publish:" + key
			if token != "" {
				sid += "?" + token
			}
			v.SRT = "srt://" + m.Meta.Addrs.SRT + "?streamid=" + url.QueryEscape(sid)
		}
		if found && m.Meta.HasLocation() {
			v.DistanceKm = float64(int64(gossip.Haversine(loc.Lat, loc.Lon, m.Meta.Lat, m.Meta.Lon)))
		}
		views = append(views, v)
	}
	res := client.Located{Stream: key, Client: addr.String(), Edge: views[0], Alternates: views[1:]}
	if found {
		res.Location = &client.ClientLocation{CIDR: loc.CIDR.String(), Site: loc.Site, Lat: loc.Lat, Lon: loc.Lon}
	}
	if token != "" {
		exp := time.Now().Add(locateTokenTTL).UTC().Truncate(time.Second)
		res.Expires = &exp
	}
	writeJSONUnmasked(w, http.StatusOK, res) // the URLs are the answer: the caller may publish there
}

func checkStreamKey(key string) error {
	var ps cfgProblems
	ps.streamKey("stream", key)
	return ps.err()
}

func parseClient(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New("not an IP")
	}
	return a.Unmap(), nil
}

// playWait is how long a player may wait for a stream that is not live on
// this node (a center pulls it on demand meanwhile).
func (a *Agent) playWait(cfg *Config) time.Duration {
	if cfg.Cluster.Enabled && cfg.Node.RunsCenter() {
		return clusterPlayWait
	}
	return 0
}
