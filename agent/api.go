package agent

// The agent's side of the HTTP API (package api): apiView gives the API
// the small views of the node it reads.

import (
	"context"
	"net/netip"
	"time"

	"github.com/relaymesh/relaymesh/api"
	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/metrics"
)

// newAPI binds the API on listen.
func (a *Agent) newAPI(listen string) (*api.Server, error) {
	v := apiView{a}
	d := api.Deps{Log: a.log, Node: v, Streams: v, Signer: v, Objects: v}
	if reg := a.ops.reg; reg != nil {
		d.Metrics = metrics.Handler(reg, a.log)
	}
	if a.cluster.gossip != nil {
		d.Cluster = v
	}
	return api.New(listen, d)
}

// apiView is the agent as package api reads it: api.Node, api.Streams,
// api.Cluster (only with a cluster), api.Signer and api.Objects.
type apiView struct{ a *Agent }

func (v apiView) Config() *config.Config { return v.a.config() }

func (v apiView) Health() client.Health {
	select {
	case <-v.a.stopping:
		return client.Health{Status: "stopping"}
	default:
	}
	cfg := v.a.config()
	return client.Health{
		Status: "ok", Node: cfg.Node.ResolveName(), Role: string(cfg.Node.Role), Version: Version,
		UptimeSeconds: int64(time.Since(v.a.started).Seconds()),
	}
}

func (v apiView) Streams() []*media.Stream            { return v.a.hub.Streams() }
func (v apiView) Stream(key string) *media.Stream     { return v.a.hub.Stream(key) }
func (v apiView) SRTStats(key string) []srt.ConnStats { return v.a.ls.SRTStats(key) }

func (v apiView) Name() string                    { return v.a.cluster.gossip.Name() }
func (v apiView) Members() []gossip.Member        { return v.a.cluster.gossip.Members() }
func (v apiView) Directory() []gossip.DirEntry    { return v.a.cluster.gossip.Directory() }
func (v apiView) Locations() gossip.LocationTable { return *v.a.cluster.locs.Load() }

func (v apiView) Locate(ctx context.Context, client netip.Addr, table gossip.LocationTable, probe int) ([]gossip.Member, error) {
	return v.a.cluster.gossip.LocateReachable(ctx, client, table, probe)
}

func (v apiView) Links() client.Links {
	cs := &v.a.cluster
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
	return out
}

func (v apiView) SignPublish(key string, exp time.Time) string {
	return v.a.access.Load().Sign(auth.ActionPublish, key, exp)
}

func (v apiView) Flows() api.Flows                  { return v.a.objects.flows }
func (v apiView) Relays() api.Relays                { return v.a.objects.relays }
func (v apiView) Tasks() api.Tasks                  { return v.a.objects.tasks }
func (v apiView) Write(op, undo func() error) error { return v.a.objects.journal.Write(op, undo) }
