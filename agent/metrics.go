package agent

// The agent is the metrics package's Source: it hands the collector the
// parts in force at each scrape (metrics/ owns the families).

import (
	"github.com/relaymesh/relaymesh/metrics"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/webhook"
)

// metricsSource is the agent as a metrics.Source.
type metricsSource struct{ a *Agent }

func (s metricsSource) Node() metrics.Node {
	cfg := s.a.config()
	return metrics.Node{Version: Version, Role: cfg.Node.Role, Name: cfg.Node.ResolveName(), Started: s.a.started}
}

func (s metricsSource) Hub() metrics.Hub { return s.a.hub }

func (s metricsSource) Listeners() metrics.Listeners {
	ls, out := s.a.ls.Servers(), metrics.Listeners{Refused: map[string]uint64{}}
	if s.a.srtBudget != nil {
		out.SRTMemory = s.a.srtBudget
	}
	if ls.RTMP != nil {
		out.Refused["rtmp"] = ls.RTMP.Refused.Load()
	}
	if ls.SRT != nil {
		out.Refused["srt"] = ls.SRT.Refused()
		out.SRT = ls.SRT
	}
	return out
}

func (s metricsSource) QoS() (netutil.QoSConfig, bool) {
	if q := s.a.ops.qos; q != nil {
		return q.State()
	}
	return netutil.QoSConfig{}, false
}

func (s metricsSource) Webhooks() (webhook.Stats, bool) {
	if h := s.a.ops.hooks; h != nil {
		return h.Stats()
	}
	return webhook.Stats{}, false
}

// Cluster leaves a part nil (not a nil pointer in the interface) when the
// node does not run it.
func (s metricsSource) Cluster() metrics.Cluster {
	cs, out := &s.a.cluster, metrics.Cluster{}
	if cs.gossip != nil {
		out.Members = cs.gossip
	}
	if cs.uplinks != nil {
		out.Uplinks = cs.uplinks
	}
	if cs.center != nil {
		out.Center = cs.center
	}
	return out
}

func (s metricsSource) Flows() metrics.Flows {
	if f := s.a.objects.flows; f != nil {
		return f
	}
	return nil
}

func (s metricsSource) WebRTC() metrics.WebRTC {
	if w := s.a.webrtc; w != nil {
		return w
	}
	return nil
}
