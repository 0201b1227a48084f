package agent

// Prometheus metrics in the collector style: nothing is mirrored in
// globals; every value is read from its owner (the hub, the listeners, the
// kernel's tc counters, the webhook sender) when /metrics is scraped.
// Labels stay bounded: stream keys (bounded by limits.max_publishers),
// tracks, listener names, SRT roles, QoS classes; never a connection.

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
)

var allDescs = []*prometheus.Desc{
	mBuild, mStart, mStreams, mPublishers, mIngestBps, mEgressBps, mRefused, mSRTConns,
	mStreamBps, mStreamFPS, mStreamKeyIvl, mStreamReaders, mStreamPub, mStreamBytesIn, mStreamBytesOut,
	mStreamFrames, mStreamSkips, mStreamDropped, mStreamUptime,
	mQoSApplied, mQoSBytes, mQoSPackets, mQoSDrops, mQoSOver,
	mHookEvents, mHookQueue,
}

// agentCollector reads the agent's state at scrape time.
type agentCollector struct{ a *Agent }

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	c.describeCluster(ch)
	ch <- mFlowSwitches
}

// bytesOuter is what a stream offers when it counts bytes sent to readers
// (departed readers included); media.Stream gains it separately.
type bytesOuter interface{ BytesOut() uint64 }

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	cfg := a.config()
	gauge(mBuild, 1, Version, cfg.Node.Role, cfg.Node.ResolveName())
	gauge(mStart, float64(a.started.UnixNano())/1e9)

	streams := a.hub.Streams()
	var in, out float64
	for _, st := range streams {
		k := st.Key()
		r := st.Meter.Rates()
		readers := st.ReaderCount()
		skips, dropped := st.Skips()
		rate := float64(r.VideoBitrate + r.AudioBitrate)
		in += rate
		out += rate * float64(readers)
		gauge(mStreamBps, float64(r.VideoBitrate), k, "video")
		gauge(mStreamBps, float64(r.AudioBitrate), k, "audio")
		gauge(mStreamFPS, r.FPS, k)
		gauge(mStreamKeyIvl, r.KeyInterval.Seconds(), k)
		gauge(mStreamReaders, float64(readers), k)
		_, live := st.Publisher()
		gauge(mStreamPub, b2f(live), k)
		counter(mStreamBytesIn, float64(r.BytesIn), k)
		if bo, ok := any(st).(bytesOuter); ok {
			counter(mStreamBytesOut, float64(bo.BytesOut()), k)
		}
		counter(mStreamFrames, float64(r.Frames), k)
		counter(mStreamSkips, float64(skips), k)
		counter(mStreamDropped, float64(dropped), k)
		gauge(mStreamUptime, time.Since(st.Created()).Seconds(), k)
	}
	gauge(mStreams, float64(len(streams)))
	gauge(mPublishers, float64(a.hub.PublisherCount()))
	gauge(mIngestBps, in)
	gauge(mEgressBps, out)

	ls := a.listeners()
	if ls.rtmp != nil {
		counter(mRefused, float64(ls.rtmp.Refused.Load()), "rtmp")
	}
	if ls.srt != nil {
		counter(mRefused, float64(ls.srt.Refused()), "srt")
		roles := map[string]int{"publish": 0, "read": 0}
		for _, s := range ls.srt.Stats() {
			roles[s.Role]++
		}
		for role, n := range roles {
			gauge(mSRTConns, float64(n), role)
		}
	}

	if q, applied := a.qosState(); q.Enabled {
		gauge(mQoSApplied, b2f(applied), q.Interface)
		if applied {
			if stats, err := netutil.ClassStats(q.Interface); err != nil {
				ch <- prometheus.NewInvalidMetric(mQoSBytes, err)
			} else {
				for _, s := range stats {
					counter(mQoSBytes, float64(s.Bytes), q.Interface, s.Class)
					counter(mQoSPackets, float64(s.Packets), q.Interface, s.Class)
					counter(mQoSDrops, float64(s.Drops), q.Interface, s.Class)
					counter(mQoSOver, float64(s.Overlimits), q.Interface, s.Class)
				}
			}
		}
	}

	if hs, ok := a.webhookStats(); ok {
		counter(mHookEvents, float64(hs.Sent), "sent")
		counter(mHookEvents, float64(hs.Delivered), "delivered")
		counter(mHookEvents, float64(hs.Failed), "failed")
		counter(mHookEvents, float64(hs.Dropped), "dropped")
		gauge(mHookQueue, float64(hs.Queued))
	}
	c.collectCluster(ch)
	c.collectFlows(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
