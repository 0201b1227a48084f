package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/netutil"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("relaymesh_"+name, help, labels, nil)
}

var (
	// node
	mBuild      = desc("build_info", "Always 1; labels say the version and role of this node.", "version", "role", "node")
	mStart      = desc("start_time_seconds", "When the agent started, in unix seconds.")
	mStreams    = desc("streams", "Live streams on this node.")
	mPublishers = desc("publishers", "Publishers attached to this node's streams.")
	mIngestBps  = desc("ingest_bits_per_second", "Sum of all streams' ingest bitrate (video and audio, last 5 s).")
	mEgressBps  = desc("egress_bits_per_second", "Media sent to readers: each stream's ingest bitrate times its readers (last 5 s).")
	mRefused    = desc("refused_connections_total", "Connections refused for bad input, limits or auth, per listener.", "listener")
	mSRTConns   = desc("srt_connections", "Open SRT connections, per role (publish or read).", "role")
	mSRTMemUsed = desc("srt_receive_memory_reserved_bytes", "Receive buffers (SRTO_RCVBUF) reserved by the node's SRT connections, backbone and handshakes in progress included, against srt.max_receive_memory.")
	mSRTMemMax  = desc("srt_receive_memory_limit_bytes", "srt.max_receive_memory in force: a handshake whose receive buffer does not fit is refused.")

	// per stream
	mStreamBps      = desc("stream_ingest_bits_per_second", "Ingest bitrate of a stream (last 5 s), per track.", "stream", "track")
	mStreamFPS      = desc("stream_frames_per_second", "Ingest video frame rate of a stream (last 5 s).", "stream")
	mStreamKeyIvl   = desc("stream_keyframe_interval_seconds", "Time between the stream's last two keyframes.", "stream")
	mStreamReaders  = desc("stream_readers", "Readers (players, outputs) attached to a stream.", "stream")
	mStreamPub      = desc("stream_publisher_connected", "1 while a publisher is attached to the stream, 0 during its reconnect grace.", "stream")
	mStreamBytesIn  = desc("stream_received_bytes_total", "Media bytes received for a stream (FLV tag bodies, video and audio).", "stream")
	mStreamBytesOut = desc("stream_sent_bytes_total", "Media bytes sent to the stream's readers, all readers summed.", "stream")
	mStreamFrames   = desc("stream_frames_total", "Video frames received for a stream.", "stream")
	mStreamSkips    = desc("stream_reader_skips_total", "Times a reader of the stream fell behind and skipped to a newer keyframe.", "stream")
	mStreamDropped  = desc("stream_readers_dropped_total", "Readers of the stream disconnected for staying behind.", "stream")
	mStreamCC       = desc("stream_cc_errors_total", "MPEG-TS continuity errors (lost or out-of-order TS packets) in the input of a TS publisher of the stream.", "stream")
	mStreamUptime   = desc("stream_uptime_seconds", "Seconds since the stream first went live.", "stream")

	// QoS (tc on the backbone interface)
	mQoSApplied = desc("qos_applied", "1 when the QoS tree is installed on the interface, 0 when [qos] is on but it is not (e.g. no CAP_NET_ADMIN).", "interface")
	mQoSBytes   = desc("qos_class_sent_bytes_total", "Bytes sent by a QoS class (tc counter).", "interface", "class")
	mQoSPackets = desc("qos_class_sent_packets_total", "Packets sent by a QoS class (tc counter).", "interface", "class")
	mQoSDrops   = desc("qos_class_dropped_packets_total", "Packets dropped by a QoS class (tc counter).", "interface", "class")
	mQoSOver    = desc("qos_class_overlimits_total", "Times a QoS class was throttled over its rate (tc counter).", "interface", "class")

	// webhooks
	mHookEvents = desc("webhook_events_total", "Webhook events by outcome: sent (queued), delivered, failed (after retries), dropped (queue full).", "result")
	mHookQueue  = desc("webhook_queue_length", "Webhook events waiting for delivery.")

	// flows: source switches by reason (silence, primary back, and the
	// health rule that fired: "health: framerate", "health: frozen",
	// "health: continuity", "health: bitrate")
	mFlowSwitches = desc("flow_switches_total", "Flow source switches, by reason (silence, primary back, or the health rule that fired).", "reason")

	// WebRTC ingest: what WHIP publishers sent that was dropped, all
	// sessions summed (the session's log has its own totals)
	mWebRTCDrops = desc("webrtc_ingest_dropped_total", mWebRTCDropsHelp, "track", "reason")
)

const mWebRTCDropsHelp = "RTP packets from WHIP publishers the node dropped, all sessions, by track (video, audio) and reason " +
	"(bad_header, bad_padding, payload_type, late, sequence_jump, lost, bad_opus; broken_frame and waiting_keyframe count video frames)."

var nodeDescs = []*prometheus.Desc{
	mBuild, mStart, mStreams, mPublishers, mIngestBps, mEgressBps, mRefused, mSRTConns, mSRTMemUsed, mSRTMemMax,
	mStreamBps, mStreamFPS, mStreamKeyIvl, mStreamReaders, mStreamPub, mStreamBytesIn, mStreamBytesOut,
	mStreamFrames, mStreamSkips, mStreamDropped, mStreamCC, mStreamUptime,
	mQoSApplied, mQoSBytes, mQoSPackets, mQoSDrops, mQoSOver,
	mHookEvents, mHookQueue,
}

// Collector reads a [Source] at scrape time.
type Collector struct{ src Source }

// New returns the node's collector over src.
func New(src Source) *Collector { return &Collector{src: src} }

// Describe sends every descriptor the collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range nodeDescs {
		ch <- d
	}
	for _, d := range clusterDescs {
		ch <- d
	}
	for _, d := range dualDescs {
		ch <- d
	}
	ch <- mFlowSwitches
	ch <- mWebRTCDrops
}

// emit sends const metrics on one scrape's channel.
type emit chan<- prometheus.Metric

func (e emit) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (e emit) counter(d *prometheus.Desc, v float64, labels ...string) {
	e <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// Collect reads the source.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	e := emit(ch)
	n := c.src.Node()
	e.gauge(mBuild, 1, n.Version, n.Role, n.Name)
	e.gauge(mStart, float64(n.Started.UnixNano())/1e9)
	collectStreams(e, c.src.Hub())
	collectListeners(e, c.src.Listeners())
	if q, applied := c.src.QoS(); q.Enabled {
		collectQoS(e, q.Interface, applied)
	}
	if hs, ok := c.src.Webhooks(); ok {
		e.counter(mHookEvents, float64(hs.Sent), "sent")
		e.counter(mHookEvents, float64(hs.Delivered), "delivered")
		e.counter(mHookEvents, float64(hs.Failed), "failed")
		e.counter(mHookEvents, float64(hs.Dropped), "dropped")
		e.gauge(mHookQueue, float64(hs.Queued))
	}
	collectCluster(e, c.src.Cluster())
	if f := c.src.Flows(); f != nil {
		for reason, n := range f.SwitchCounts() {
			e.counter(mFlowSwitches, float64(n), reason)
		}
	}
	if w := c.src.WebRTC(); w != nil {
		for _, d := range w.IngestDrops() {
			e.counter(mWebRTCDrops, float64(d.Count), d.Track, d.Reason)
		}
	}
}

func collectStreams(e emit, h Hub) {
	streams := h.Streams()
	var in, out float64
	for _, st := range streams {
		k := st.Key()
		r := st.Meter.Rates()
		readers := st.ReaderCount()
		skips, dropped := st.Skips()
		rate := float64(r.VideoBitrate + r.AudioBitrate)
		in += rate
		out += rate * float64(readers)
		e.gauge(mStreamBps, float64(r.VideoBitrate), k, "video")
		e.gauge(mStreamBps, float64(r.AudioBitrate), k, "audio")
		e.gauge(mStreamFPS, r.FPS, k)
		e.gauge(mStreamKeyIvl, r.KeyInterval.Seconds(), k)
		e.gauge(mStreamReaders, float64(readers), k)
		_, live := st.Publisher()
		e.gauge(mStreamPub, b2f(live), k)
		e.counter(mStreamBytesIn, float64(r.BytesIn), k)
		e.counter(mStreamBytesOut, float64(st.BytesOut()), k)
		e.counter(mStreamFrames, float64(r.Frames), k)
		e.counter(mStreamSkips, float64(skips), k)
		e.counter(mStreamDropped, float64(dropped), k)
		e.counter(mStreamCC, float64(st.ContinuityErrors()), k)
		e.gauge(mStreamUptime, time.Since(st.Created()).Seconds(), k)
	}
	e.gauge(mStreams, float64(len(streams)))
	e.gauge(mPublishers, float64(h.PublisherCount()))
	e.gauge(mIngestBps, in)
	e.gauge(mEgressBps, out)
}

func collectListeners(e emit, ls Listeners) {
	for name, n := range ls.Refused {
		e.counter(mRefused, float64(n), name)
	}
	if ls.SRT != nil {
		roles := map[string]int{"publish": 0, "read": 0}
		for _, s := range ls.SRT.Stats() {
			roles[s.Role]++
		}
		for role, n := range roles {
			e.gauge(mSRTConns, float64(n), role)
		}
	}
	if m := ls.SRTMemory; m != nil {
		e.gauge(mSRTMemUsed, float64(m.Reserved()))
		e.gauge(mSRTMemMax, float64(m.Limit()))
	}
}

// collectQoS reads the tc class counters of the interface the QoS tree is
// on; a failed read is one invalid metric, not a failed scrape.
func collectQoS(e emit, iface string, applied bool) {
	e.gauge(mQoSApplied, b2f(applied), iface)
	if !applied {
		return
	}
	stats, err := netutil.ClassStats(iface)
	if err != nil {
		e <- prometheus.NewInvalidMetric(mQoSBytes, err)
		return
	}
	for _, s := range stats {
		e.counter(mQoSBytes, float64(s.Bytes), iface, s.Class)
		e.counter(mQoSPackets, float64(s.Packets), iface, s.Class)
		e.counter(mQoSDrops, float64(s.Drops), iface, s.Class)
		e.counter(mQoSOver, float64(s.Overlimits), iface, s.Class)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
