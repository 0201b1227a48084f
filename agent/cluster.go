package agent

// This file wires the cluster: gossip membership, edge uplinks, center
// backbone, on-demand pulls, /v1/nodes, /v1/locate into the agent.

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/netutil"
)

// leaveTimeout bounds the spread of the leave message on shutdown.
const leaveTimeout = 2 * time.Second

// clusterState is the agent's cluster part (Agent.cluster).
type clusterState struct {
	gossip  *gossip.Cluster
	center  *center.Center
	uplinks *edge.Uplinks
	locs    atomic.Pointer[gossip.LocationTable]
	// backbonePass is the backbone key, for flow outputs that deliver to
	// another node's flow (flow.Directory, wired in flowdir.go)
	backbonePass atomic.Pointer[string]
}

// newCluster builds the cluster components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newCluster(cfg *config.Config) error {
	cc := cfg.Cluster
	if !cc.Enabled {
		return nil
	}
	cs := &a.cluster
	table, err := cfg.LocationTable()
	if err != nil {
		return err
	}
	cs.locs.Store(&table)
	pass, err := cc.LoadBackbonePassphrase()
	if err != nil {
		return fmt.Errorf("cluster.backbone_key_file: %w", err)
	}
	cs.backbonePass.Store(&pass)

	gc, err := cfg.GossipConfig(Version)
	if err != nil {
		return err
	}
	gc.OnEvent = gossip.ToBus(a.events, a.log) // webhooks, metrics and the roles follow the bus
	g, err := gossip.New(gc, a.log)
	if err != nil {
		return netutil.ListenError("cluster.bind", cc.GossipBind(), err)
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

	if cfg.Node.RunsCenter() {
		ccfg := center.ConfigOf(cfg, pass, a.events)
		ccfg.Budget = a.srtBudget
		c, err := center.New(ccfg, a.hub, g, a.log)
		if err != nil {
			return fmt.Errorf("cluster.backbone_listen: %w", err)
		}
		cs.center = c
		a.add(c.Run, c.Close) // it follows the event bus itself
		a.onMissing = append(a.onMissing, c.Missing)
	}
	if cfg.Node.Role == config.RoleEdge {
		u, err := edge.New(edge.ConfigOf(cfg, pass, a.events), a.hub, g, a.log)
		if err != nil {
			return err
		}
		cs.uplinks = u
		a.add(u.Run, u.Close) // it follows the event bus itself
	}

	meta := g.LocalMeta()
	meta.Addrs = a.clusterAddrs(cfg, g.Addr().Addr())
	if err := g.SetMeta(meta); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	a.add(func(ctx context.Context) error { return g.ReportLoad(ctx, time.Second, a.hubLoad) }, func() error { return nil })
	a.beforeDrain = append(a.beforeDrain, a.leaveCluster)
	return nil
}

// clusterAddrs are the addresses this node advertises: the listeners'
// ports on the gossip address (gossip.Addrs.On).
func (a *Agent) clusterAddrs(cfg *config.Config, ip netip.Addr) gossip.Addrs {
	ad := gossip.Addrs{RTMP: a.listenAddr("rtmp"), SRT: a.listenAddr("srt"), HTTPFLV: a.listenAddr("http")}
	if cfg.API.Listen != "" && !config.IsLoopback(cfg.API.Listen) {
		ad.API = cfg.API.Listen
	}
	if c := a.cluster.center; c != nil && c.Addr() != nil {
		ad.Backbone = c.Addr().String()
	}
	return ad.On(ip)
}

// hubLoad is the hub's streams as gossip load (gossip.ReportLoad).
func (a *Agent) hubLoad() []gossip.StreamRate {
	var out []gossip.StreamRate
	for _, st := range a.hub.Streams() {
		r := st.Meter.Rates()
		out = append(out, gossip.StreamRate{Bitrate: r.VideoBitrate + r.AudioBitrate, Readers: st.ReaderCount()})
	}
	return out
}

// leaveCluster announces the leave first, so edges move their uplinks to
// another center while this one still serves (make-before-break), then
// waits (bounded) until no edge pushes here and no other center pulls
// from here any more: their pulls follow the directory to the uplinks'
// new centers, also make-before-break. Only then are its own players
// ended (drain).
func (a *Agent) leaveCluster() {
	cs := &a.cluster
	if cs.gossip == nil {
		return
	}
	start := time.Now()
	if err := cs.gossip.Leave(leaveTimeout); err != nil {
		a.log.Warn("cluster leave", "err", err)
	}
	if cs.center != nil {
		if rd := cs.center.AwaitLeave(center.LeaveMoveWait, center.LeaveSettle); rd > 0 {
			a.log.Warn("backbone links still open after the leave wait; closing them", "pulls", rd, "waited", center.LeaveMoveWait.String())
		}
	}
	a.log.Info("left the cluster", "took", time.Since(start).Round(time.Millisecond).String())
}

// prepareCluster reads the location table and the backbone key of next
// (its keys that need a restart were refused before, by Diff); commit
// puts the table, the uplink routes and the capacity in force.
func (a *Agent) prepareCluster(_, next *config.Config) (change, error) {
	cs := &a.cluster
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
		cs.backbonePass.Store(&pass)
		if cs.uplinks != nil {
			cs.uplinks.SetConfig(edge.ConfigOf(next, pass, a.events))
		}
	}}, nil
}

// advertise tells the cluster what this node offers under cfg: its
// capacity and the listeners' addresses as bound now, so a moved listener
// is advertised (and located) at its new port.
func (a *Agent) advertise(cfg *config.Config) {
	g := a.cluster.gossip
	if g == nil {
		return
	}
	m := g.LocalMeta()
	m.Capacity = cfg.Cluster.GossipCapacity()
	m.Addrs = a.clusterAddrs(cfg, g.Addr().Addr())
	if reflect.DeepEqual(m, g.LocalMeta()) {
		return
	}
	if err := g.SetMeta(m); err != nil {
		a.log.Error("cluster: the new addresses and capacity are not advertised", "err", err)
	}
}
