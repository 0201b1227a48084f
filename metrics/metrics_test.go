package metrics

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/dualpath"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/webrtc"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/webhook"
)

// fakeSource is a node with the parts a test gives it.
type fakeSource struct {
	hub     *media.Hub
	ls      Listeners
	hooks   *webhook.Stats
	cluster Cluster
	flows   Flows
	webrtc  WebRTC
}

func (f fakeSource) Node() Node {
	return Node{Version: "v1", Role: "edge", Name: "n1", Started: time.Unix(1700000000, 0)}
}
func (f fakeSource) Hub() Hub                       { return f.hub }
func (f fakeSource) Listeners() Listeners           { return f.ls }
func (f fakeSource) QoS() (netutil.QoSConfig, bool) { return netutil.QoSConfig{}, false }
func (f fakeSource) Webhooks() (webhook.Stats, bool) {
	if f.hooks == nil {
		return webhook.Stats{}, false
	}
	return *f.hooks, true
}
func (f fakeSource) Cluster() Cluster { return f.cluster }
func (f fakeSource) Flows() Flows     { return f.flows }
func (f fakeSource) WebRTC() WebRTC   { return f.webrtc }

type fakeWebRTC []webrtc.IngestDrop

func (f fakeWebRTC) IngestDrops() []webrtc.IngestDrop { return f }

type fakeMembers []gossip.Member

func (f fakeMembers) Members() []gossip.Member { return f }

type fakeUplinks struct {
	streams []edge.Status
	duals   []edge.DualStatus
}

func (f fakeUplinks) Streams() []edge.Status         { return f.streams }
func (f fakeUplinks) DualStreams() []edge.DualStatus { return f.duals }
func (f fakeUplinks) Replacements() uint64           { return 3 }
func (f fakeUplinks) HealthMoves() uint64            { return 1 }

type fakeCenter struct {
	pulls []center.PullStatus
	duals []center.DualStatus
}

func (f fakeCenter) Pulls() []center.PullStatus { return f.pulls }
func (f fakeCenter) Duals() []center.DualStatus { return f.duals }

// dualUplink is an edge's dual-path stream: leg 0 to c1 running, leg 1
// to c2 backing off.
func dualUplink() edge.DualStatus {
	d := edge.DualStatus{Stream: "live/d"}
	d.Legs[0] = edge.DualLegStatus{Center: "c1", Link: link.Status{State: link.StateRunning}}
	d.Legs[1] = edge.DualLegStatus{Center: "c2", Link: link.Status{State: link.StateBackoff}}
	return d
}

// dualMerge is a center's merge of live/d's two legs.
func dualMerge() center.DualStatus {
	d := center.DualStatus{Stream: "live/d", Merge: dualpath.Stats{Emitted: 100, Lost: 2}}
	d.Merge.Legs[0] = dualpath.LegStats{Up: true, First: 60, Duplicates: 30, Late: 1, Recovered: 10}
	d.Merge.Legs[1] = dualpath.LegStats{First: 40, Duplicates: 50}
	return d
}

type fakeFlows map[string]uint64

func (f fakeFlows) SwitchCounts() map[string]uint64 { return f }

type fakeBus events.Stats

func (f fakeBus) Stats() events.Stats { return events.Stats(f) }

type fakeSRTMemory struct{ reserved, limit int64 }

func (m fakeSRTMemory) Reserved() int64 { return m.reserved }
func (m fakeSRTMemory) Limit() int64    { return m.limit }

func newHub() *media.Hub {
	return media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
}

// TestCollector reads each part of a fake node: the families a part
// exports appear with its values and labels, and a part that is off
// exports nothing.
func TestCollector(t *testing.T) {
	up := link.Status{State: link.StateRunning, Reconnects: 2,
		Total: link.Counters{Bytes: 1000, PacketsLost: 3, Retransmits: 4, Drops: 5},
		SRT:   &link.SRTStats{RTTMs: 20, LatencyMs: 120}}
	tests := []struct {
		name  string
		src   fakeSource
		names []string
		want  string
	}{
		{"node without listeners", fakeSource{hub: newHub()},
			[]string{"relaymesh_build_info", "relaymesh_start_time_seconds", "relaymesh_streams", "relaymesh_refused_connections_total", "relaymesh_srt_connections"}, `
# HELP relaymesh_build_info Always 1; labels say the version and role of this node.
# TYPE relaymesh_build_info gauge
relaymesh_build_info{node="n1",role="edge",version="v1"} 1
# HELP relaymesh_start_time_seconds When the agent started, in unix seconds.
# TYPE relaymesh_start_time_seconds gauge
relaymesh_start_time_seconds 1.7e+09
# HELP relaymesh_streams Live streams on this node.
# TYPE relaymesh_streams gauge
relaymesh_streams 0
`},
		{"listeners", fakeSource{hub: newHub(), ls: Listeners{Refused: map[string]uint64{"rtmp": 7}}},
			[]string{"relaymesh_refused_connections_total"}, `
# HELP relaymesh_refused_connections_total Connections refused for bad input, limits or auth, per listener.
# TYPE relaymesh_refused_connections_total counter
relaymesh_refused_connections_total{listener="rtmp"} 7
`},
		{"srt receive memory", fakeSource{hub: newHub(), ls: Listeners{SRTMemory: fakeSRTMemory{reserved: 3 << 20, limit: 1 << 30}}},
			[]string{"relaymesh_srt_receive_memory_reserved_bytes", "relaymesh_srt_receive_memory_limit_bytes"}, `
# HELP relaymesh_srt_receive_memory_reserved_bytes Receive buffers (SRTO_RCVBUF) reserved by the node's SRT connections, backbone and handshakes in progress included, against srt.max_receive_memory.
# TYPE relaymesh_srt_receive_memory_reserved_bytes gauge
relaymesh_srt_receive_memory_reserved_bytes 3.145728e+06
# HELP relaymesh_srt_receive_memory_limit_bytes srt.max_receive_memory in force: a handshake whose receive buffer does not fit is refused.
# TYPE relaymesh_srt_receive_memory_limit_bytes gauge
relaymesh_srt_receive_memory_limit_bytes 1.073741824e+09
`},
		{"webhooks", fakeSource{hub: newHub(), hooks: &webhook.Stats{Sent: 4, Delivered: 3, Failed: 1, Queued: 2}},
			[]string{"relaymesh_webhook_events_total", "relaymesh_webhook_queue_length"}, `
# HELP relaymesh_webhook_events_total Webhook events by outcome: sent (queued), delivered, failed (after retries), dropped (queue full).
# TYPE relaymesh_webhook_events_total counter
relaymesh_webhook_events_total{result="delivered"} 3
relaymesh_webhook_events_total{result="dropped"} 0
relaymesh_webhook_events_total{result="failed"} 1
relaymesh_webhook_events_total{result="sent"} 4
# HELP relaymesh_webhook_queue_length Webhook events waiting for delivery.
# TYPE relaymesh_webhook_queue_length gauge
relaymesh_webhook_queue_length 2
`},
		{"cluster off", fakeSource{hub: newHub(), cluster: Cluster{Uplinks: fakeUplinks{streams: []edge.Status{{Stream: "live/a", Center: "c1", Relay: up}}}}},
			[]string{"relaymesh_cluster_members", "relaymesh_link_connected"}, ""},
		{"cluster with an uplink and a pull", fakeSource{hub: newHub(), cluster: Cluster{
			Members: fakeMembers{
				{Name: "n1", State: gossip.StateAlive, Local: true, RTTKnown: true, RTT: time.Second},
				{Name: "c1", State: gossip.StateAlive, RTTKnown: true, RTT: 30 * time.Millisecond},
				{Name: "c2", State: gossip.StateSuspect},
			},
			Uplinks: fakeUplinks{streams: []edge.Status{{Stream: "live/a", Center: "c1", Relay: up}}},
			Center:  fakeCenter{pulls: []center.PullStatus{{Stream: "live/b", From: "c2", Link: link.Status{State: link.StateConnecting}}}},
		}}, []string{"relaymesh_cluster_members", "relaymesh_member_rtt_seconds", "relaymesh_link_connected", "relaymesh_link_rtt_seconds",
			"relaymesh_link_latency_seconds", "relaymesh_link_bytes_total", "relaymesh_link_reconnects_total", "relaymesh_link_packets_lost_total",
			"relaymesh_link_retransmits_total", "relaymesh_link_dropped_packets_total", "relaymesh_uplink_replacements_total", "relaymesh_uplink_health_moves_total"}, `
# HELP relaymesh_cluster_members Cluster members as this node sees them, by state.
# TYPE relaymesh_cluster_members gauge
relaymesh_cluster_members{state="alive"} 2
relaymesh_cluster_members{state="dead"} 0
relaymesh_cluster_members{state="left"} 0
relaymesh_cluster_members{state="suspect"} 1
# HELP relaymesh_member_rtt_seconds Best RTT estimate to a member (network coordinates, else the last ping).
# TYPE relaymesh_member_rtt_seconds gauge
relaymesh_member_rtt_seconds{peer="c1"} 0.03
# HELP relaymesh_link_connected 1 while the backbone link is connected.
# TYPE relaymesh_link_connected gauge
relaymesh_link_connected{direction="pull",peer="c2",stream="live/b"} 0
relaymesh_link_connected{direction="uplink",peer="c1",stream="live/a"} 1
# HELP relaymesh_link_rtt_seconds SRT round-trip time of a backbone link.
# TYPE relaymesh_link_rtt_seconds gauge
relaymesh_link_rtt_seconds{direction="uplink",peer="c1",stream="live/a"} 0.02
# HELP relaymesh_link_latency_seconds SRT latency setting of a backbone link.
# TYPE relaymesh_link_latency_seconds gauge
relaymesh_link_latency_seconds{direction="uplink",peer="c1",stream="live/a"} 0.12
# HELP relaymesh_link_bytes_total Bytes moved by a backbone link since it started.
# TYPE relaymesh_link_bytes_total counter
relaymesh_link_bytes_total{direction="pull",peer="c2",stream="live/b"} 0
relaymesh_link_bytes_total{direction="uplink",peer="c1",stream="live/a"} 1000
# HELP relaymesh_link_reconnects_total Times a backbone link reconnected.
# TYPE relaymesh_link_reconnects_total counter
relaymesh_link_reconnects_total{direction="pull",peer="c2",stream="live/b"} 0
relaymesh_link_reconnects_total{direction="uplink",peer="c1",stream="live/a"} 2
# HELP relaymesh_link_packets_lost_total Packets lost on a backbone link, all its sessions.
# TYPE relaymesh_link_packets_lost_total counter
relaymesh_link_packets_lost_total{direction="pull",peer="c2",stream="live/b"} 0
relaymesh_link_packets_lost_total{direction="uplink",peer="c1",stream="live/a"} 3
# HELP relaymesh_link_retransmits_total Packets retransmitted on a backbone link, all its sessions.
# TYPE relaymesh_link_retransmits_total counter
relaymesh_link_retransmits_total{direction="pull",peer="c2",stream="live/b"} 0
relaymesh_link_retransmits_total{direction="uplink",peer="c1",stream="live/a"} 4
# HELP relaymesh_link_dropped_packets_total Packets dropped too late on a backbone link, all its sessions.
# TYPE relaymesh_link_dropped_packets_total counter
relaymesh_link_dropped_packets_total{direction="pull",peer="c2",stream="live/b"} 0
relaymesh_link_dropped_packets_total{direction="uplink",peer="c1",stream="live/a"} 5
# HELP relaymesh_uplink_replacements_total Edge uplinks moved make-before-break to a center with a clearly lower RTT (re-placement).
# TYPE relaymesh_uplink_replacements_total counter
relaymesh_uplink_replacements_total 3
# HELP relaymesh_uplink_health_moves_total Edge uplinks moved make-before-break away from a link that was connected but unhealthy (it dropped packets).
# TYPE relaymesh_uplink_health_moves_total counter
relaymesh_uplink_health_moves_total 1
`},
		{"dual-path merge on a center", fakeSource{hub: newHub(), cluster: Cluster{Members: fakeMembers{},
			Center: fakeCenter{duals: []center.DualStatus{dualMerge()}}}},
			[]string{"relaymesh_dual_leg_up", "relaymesh_dual_leg_packets_total", "relaymesh_dual_lost_packets_total", "relaymesh_dual_merged_packets_total"}, `
# HELP relaymesh_dual_leg_up 1 while a leg of a dual-path stream merged here is connected.
# TYPE relaymesh_dual_leg_up gauge
relaymesh_dual_leg_up{leg="0",stream="live/d"} 1
relaymesh_dual_leg_up{leg="1",stream="live/d"} 0
# HELP relaymesh_dual_leg_packets_total RTP packets of a dual-path leg by what the merge made of them: first (delivered before the other leg), duplicate, late (after the window), recovered_by_other (this leg never delivered it, the other did).
# TYPE relaymesh_dual_leg_packets_total counter
relaymesh_dual_leg_packets_total{kind="duplicate",leg="0",stream="live/d"} 30
relaymesh_dual_leg_packets_total{kind="duplicate",leg="1",stream="live/d"} 50
relaymesh_dual_leg_packets_total{kind="first",leg="0",stream="live/d"} 60
relaymesh_dual_leg_packets_total{kind="first",leg="1",stream="live/d"} 40
relaymesh_dual_leg_packets_total{kind="late",leg="0",stream="live/d"} 1
relaymesh_dual_leg_packets_total{kind="late",leg="1",stream="live/d"} 0
relaymesh_dual_leg_packets_total{kind="recovered_by_other",leg="0",stream="live/d"} 10
relaymesh_dual_leg_packets_total{kind="recovered_by_other",leg="1",stream="live/d"} 0
# HELP relaymesh_dual_lost_packets_total RTP packets of a dual-path stream that neither leg delivered within the window.
# TYPE relaymesh_dual_lost_packets_total counter
relaymesh_dual_lost_packets_total{stream="live/d"} 2
# HELP relaymesh_dual_merged_packets_total RTP packets the merge of a dual-path stream emitted.
# TYPE relaymesh_dual_merged_packets_total counter
relaymesh_dual_merged_packets_total{stream="live/d"} 100
`},
		{"an edge's dual legs as backbone links", fakeSource{hub: newHub(), cluster: Cluster{Members: fakeMembers{},
			Uplinks: fakeUplinks{streams: []edge.Status{{Stream: "live/a", Center: "c1"}}, duals: []edge.DualStatus{dualUplink()}}}},
			[]string{"relaymesh_link_connected"}, `
# HELP relaymesh_link_connected 1 while the backbone link is connected.
# TYPE relaymesh_link_connected gauge
relaymesh_link_connected{direction="uplink",peer="c1",stream="live/a"} 0
relaymesh_link_connected{direction="uplink-leg0",peer="c1",stream="live/d"} 1
relaymesh_link_connected{direction="uplink-leg1",peer="c2",stream="live/d"} 0
`},
		{"flow switches", fakeSource{hub: newHub(), flows: fakeFlows{"silence": 2, "health: framerate": 1}},
			[]string{"relaymesh_flow_switches_total"}, `
# HELP relaymesh_flow_switches_total Flow source switches, by reason (silence, primary back, or the health rule that fired).
# TYPE relaymesh_flow_switches_total counter
relaymesh_flow_switches_total{reason="health: framerate"} 1
relaymesh_flow_switches_total{reason="silence"} 2
`},
		{"webrtc off", fakeSource{hub: newHub()}, []string{"relaymesh_webrtc_ingest_dropped_total"}, ""},
		{"webrtc ingest drops", fakeSource{hub: newHub(), webrtc: fakeWebRTC{
			{Track: "video", Reason: "lost", Count: 5}, {Track: "video", Reason: "payload_type", Count: 0}, {Track: "audio", Reason: "payload_type", Count: 2},
		}}, []string{"relaymesh_webrtc_ingest_dropped_total"}, `
# HELP relaymesh_webrtc_ingest_dropped_total ` + mWebRTCDropsHelp + `
# TYPE relaymesh_webrtc_ingest_dropped_total counter
relaymesh_webrtc_ingest_dropped_total{reason="lost",track="video"} 5
relaymesh_webrtc_ingest_dropped_total{reason="payload_type",track="audio"} 2
relaymesh_webrtc_ingest_dropped_total{reason="payload_type",track="video"} 0
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := gather(t, New(tc.src), tc.names...); got != strings.TrimPrefix(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestEvents exports every event kind, published or not, and every
// subscriber's missed and queued counts.
func TestEvents(t *testing.T) {
	bus := fakeBus{Published: map[events.Kind]uint64{events.KindStreamPublished: 2},
		Subscribers: []events.SubscriberStats{{Name: "ops", Missed: 1, Queued: 3}}}
	want := `
# HELP relaymesh_event_subscriber_missed_total Events a subscriber of the node's event bus lost because it fell behind.
# TYPE relaymesh_event_subscriber_missed_total counter
relaymesh_event_subscriber_missed_total{subscriber="ops"} 1
# HELP relaymesh_event_subscriber_queued Events waiting in a subscriber's queue.
# TYPE relaymesh_event_subscriber_queued gauge
relaymesh_event_subscriber_queued{subscriber="ops"} 3
`
	if got := gather(t, NewEvents(bus), "relaymesh_event_subscriber_missed_total", "relaymesh_event_subscriber_queued"); got != strings.TrimPrefix(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if n := strings.Count(gather(t, NewEvents(bus), "relaymesh_events_total"), "\nrelaymesh_events_total{"); n != len(events.Kinds) {
		t.Errorf("relaymesh_events_total has %d series, want one per kind (%d)", n, len(events.Kinds))
	}
}

// gather registers c alone in a pedantic registry (which checks every
// metric against its descriptor) and returns the text format of the
// families names, in the order given.
func gather(t *testing.T, c prometheus.Collector, names ...string) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, name := range names {
		for _, mf := range mfs {
			if mf.GetName() == name {
				if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return b.String()
}
