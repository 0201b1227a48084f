package client

import (
	"time"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/unit"
)

// The answers of the API. The agent's handlers encode these structs.

// Health is GET /healthz. Beyond loopback without a token only Status is
// set.
type Health struct {
	Status        string `json:"status"` // "ok" (or "stopping", with HTTP 503)
	Node          string `json:"node,omitempty"`
	Role          string `json:"role,omitempty"`
	Version       string `json:"version,omitempty"`
	UptimeSeconds int64  `json:"uptime_seconds,omitempty"`
}

// Stream is one live stream on the node: GET /v1/streams/{app}/{name}.
type Stream struct {
	Name          string               `json:"name"`
	Codecs        unit.CodecInfo       `json:"codecs"`
	Video         string               `json:"video_codec,omitempty"`
	Audio         string               `json:"audio_codec,omitempty"`
	Width         int                  `json:"width,omitempty"`
	Height        int                  `json:"height,omitempty"`
	FPS           float64              `json:"fps"`
	VideoBitrate  int64                `json:"video_bitrate"`
	AudioBitrate  int64                `json:"audio_bitrate"`
	KeyInterval   float64              `json:"keyframe_interval_seconds"`
	BytesIn       int64                `json:"bytes_in"`
	Frames        int64                `json:"frames"`       // video frames received since the stream started
	AudioFrames   int64                `json:"audio_frames"` // audio frames (an audio-only stream: frames and fps 0)
	Publisher     *media.PublisherInfo `json:"publisher"`
	Readers       []media.ReaderInfo   `json:"readers"`
	ReaderCount   int                  `json:"reader_count"`
	UptimeSeconds int64                `json:"uptime_seconds"`
	Skips         uint64               `json:"reader_skips"`
	Dropped       uint64               `json:"readers_dropped"`
	// CCErrors are the MPEG-TS continuity errors in the input of a TS
	// publisher (SRT): TS packets lost or out of order before the demuxer
	CCErrors uint64          `json:"cc_errors"`
	SRT      []srt.ConnStats `json:"srt,omitempty"` // the stream's SRT connections
}

// StreamList is GET /v1/streams.
type StreamList struct {
	Streams []Stream `json:"streams"`
}

// StreamStats is GET /v1/streams/{app}/{name}/stats: frame rate and bit
// rate over a window of the last hour. ResolutionSeconds is what was asked
// for; each point says how long it is.
type StreamStats struct {
	Stream            string       `json:"stream"`
	ResolutionSeconds float64      `json:"resolution_seconds"`
	Points            []StatsPoint `json:"points"`
}

// StatsPoint is one interval of StreamStats: Seconds long from Time. The
// last 5 minutes are kept at one second, older ones as whole minutes, so a
// point older than that is 60 s long whatever resolution was asked for.
type StatsPoint struct {
	Time         time.Time `json:"time"`
	Seconds      float64   `json:"seconds"`
	FPS          float64   `json:"fps"`
	VideoBitrate int64     `json:"video_bitrate"`
	AudioBitrate int64     `json:"audio_bitrate"`
}

// Node is one cluster member in GET /v1/nodes.
type Node struct {
	Name     string            `json:"name"`
	Role     string            `json:"role"`
	Site     string            `json:"site"`
	Region   string            `json:"region"`
	State    string            `json:"state"`
	Local    bool              `json:"local"`
	RTTMs    *float64          `json:"rtt_ms"`          // best estimate: network coordinates, else the last ping
	PingMs   *float64          `json:"measured_rtt_ms"` // the last direct ping round trip
	Streams  int               `json:"streams"`
	MbpsIn   float64           `json:"mbps_in"`
	MbpsOut  float64           `json:"mbps_out"`
	Capacity Capacity          `json:"capacity"`
	Addrs    map[string]string `json:"addrs"` // gossip, rtmp, srt, http, api, backbone
	Version  string            `json:"version,omitempty"`
	Updated  time.Time         `json:"updated"`
}

// Capacity is what a node accepts (0: no limit).
type Capacity struct {
	MaxStreams int     `json:"max_streams"`
	MaxMbps    float64 `json:"max_mbps"`
}

// Nodes is GET /v1/nodes: Node is the answering node's name.
type Nodes struct {
	Node  string `json:"node"`
	Nodes []Node `json:"nodes"`
}

// DirectoryEntry says which node a stream is live on.
type DirectoryEntry struct {
	Stream  string    `json:"stream"`
	Node    string    `json:"node"`
	Version uint64    `json:"version"`
	Updated time.Time `json:"updated"`
}

// Directory is GET /v1/directory, the cluster's stream directory.
type Directory struct {
	Streams []DirectoryEntry `json:"streams"`
}

// Links is GET /v1/links: this node's backbone links.
type Links struct {
	Uplinks  []edge.Status       `json:"uplinks"`  // edge: one per stream sent to a center
	Pulls    []center.PullStatus `json:"pulls"`    // center: on-demand pulls from other centers
	Backbone []srt.ConnStats     `json:"backbone"` // center: the backbone listener's connections
	// DualUplinks (edge) and Dual (center): redundancy = "dual" streams,
	// with per-leg counters
	DualUplinks []edge.DualStatus   `json:"dual_uplinks,omitempty"`
	Dual        []center.DualStatus `json:"dual,omitempty"`
}

// Ingest is one edge a broadcaster may publish to.
type Ingest struct {
	Node       string  `json:"node"`
	Site       string  `json:"site"`
	RTMP       string  `json:"rtmp,omitempty"` // publish URL, signed when publishing needs a token
	SRT        string  `json:"srt,omitempty"`
	DistanceKm float64 `json:"distance_km,omitempty"`
}

// Located is GET /v1/locate: the best edge for a broadcaster and the next
// best.
type Located struct {
	Stream     string          `json:"stream"`
	Client     string          `json:"client"`
	Edge       Ingest          `json:"edge"`
	Alternates []Ingest        `json:"alternates"`
	Location   *ClientLocation `json:"location,omitempty"` // the [[location]] the client's address fell in
	Expires    *time.Time      `json:"expires,omitempty"`  // when the URLs' tokens expire
}

// ClientLocation is the [[location]] entry a client's address matched.
type ClientLocation struct {
	CIDR string  `json:"cidr"`
	Site string  `json:"site"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
}
