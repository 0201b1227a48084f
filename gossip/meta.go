package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
)

// MetaMaxSize is the largest encoded NodeMeta memberlist accepts.
const MetaMaxSize = 512

// Role is what a node does in the cluster.
type Role string

// The roles a node can have.
const (
	RoleEdge       Role = "edge"
	RoleCenter     Role = "center"
	RoleStandalone Role = "standalone" // edge and center on one host
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleEdge || r == RoleCenter || r == RoleStandalone
}

// IsCenter reports whether a node with this role hosts streams for edges.
func (r Role) IsCenter() bool { return r == RoleCenter || r == RoleStandalone }

// IsEdge reports whether a node with this role takes publishers.
func (r Role) IsEdge() bool { return r == RoleEdge || r == RoleStandalone }

// Addrs are the addresses a node advertises to clients and peers.
type Addrs struct {
	RTMP     string `json:"r,omitempty"` // host:port of the RTMP listener
	SRT      string `json:"s,omitempty"` // host:port of the SRT listener
	HTTPFLV  string `json:"f,omitempty"` // host:port of the HTTP-FLV listener
	API      string `json:"a,omitempty"` // host:port of the JSON API
	Backbone string `json:"b,omitempty"` // host:port of the SRT backbone listener
}

// Load is what a node currently carries.
type Load struct {
	Streams int     `json:"s,omitempty"`
	MbpsIn  float64 `json:"i,omitempty"`
	MbpsOut float64 `json:"o,omitempty"`
}

// Capacity is the most a node accepts. Zero means unlimited.
type Capacity struct {
	MaxStreams int     `json:"s,omitempty"`
	MaxMbps    float64 `json:"m,omitempty"` // applies to MbpsIn+MbpsOut
}

// NodeMeta is the metadata every node advertises over gossip.
type NodeMeta struct {
	Name     string   `json:"-"` // the memberlist node name; not encoded
	Role     Role     `json:"r"`
	Site     string   `json:"s,omitempty"`
	Region   string   `json:"g,omitempty"`
	Lat      float64  `json:"la,omitempty"`
	Lon      float64  `json:"lo,omitempty"`
	Addrs    Addrs    `json:"a"`
	Load     Load     `json:"l"`
	Capacity Capacity `json:"c"`
	Version  string   `json:"v,omitempty"`
}

// ErrMetaTooLarge is returned when the encoded metadata exceeds MetaMaxSize.
var ErrMetaTooLarge = errors.New("node metadata too large")

// HasSpare reports whether the node can take one more stream.
func (m NodeMeta) HasSpare() bool {
	if m.Capacity.MaxStreams > 0 && m.Load.Streams >= m.Capacity.MaxStreams {
		return false
	}
	if m.Capacity.MaxMbps > 0 && m.Load.MbpsIn+m.Load.MbpsOut >= m.Capacity.MaxMbps {
		return false
	}
	return true
}

// Utilization is the larger of the stream and bandwidth fractions in use,
// or, when no capacity is set, the stream count (so lighter nodes sort first).
func (m NodeMeta) Utilization() float64 {
	u := -1.0
	if m.Capacity.MaxStreams > 0 {
		u = float64(m.Load.Streams) / float64(m.Capacity.MaxStreams)
	}
	if m.Capacity.MaxMbps > 0 {
		u = math.Max(u, (m.Load.MbpsIn+m.Load.MbpsOut)/m.Capacity.MaxMbps)
	}
	if u < 0 {
		return float64(m.Load.Streams)
	}
	return u
}

// HasLocation reports whether the node advertises coordinates.
func (m NodeMeta) HasLocation() bool { return m.Lat != 0 || m.Lon != 0 }

// Validate checks the fields and that the encoding fits in MetaMaxSize.
func (m NodeMeta) Validate() error {
	var errs []error
	if !m.Role.Valid() {
		errs = append(errs, fmt.Errorf("role: %q is not edge, center or standalone", m.Role))
	}
	if m.Lat < -90 || m.Lat > 90 || math.IsNaN(m.Lat) {
		errs = append(errs, fmt.Errorf("lat: %v is outside -90..90", m.Lat))
	}
	if m.Lon < -180 || m.Lon > 180 || math.IsNaN(m.Lon) {
		errs = append(errs, fmt.Errorf("lon: %v is outside -180..180", m.Lon))
	}
	if m.Load.Streams < 0 || m.Capacity.MaxStreams < 0 || m.Load.MbpsIn < 0 || m.Load.MbpsOut < 0 || m.Capacity.MaxMbps < 0 {
		errs = append(errs, errors.New("load and capacity must not be negative"))
	}
	if len(errs) == 0 {
		if _, err := m.encode(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// encode returns the compact wire form, or ErrMetaTooLarge.
func (m NodeMeta) encode() ([]byte, error) {
	// Round the rates so they do not waste bytes.
	m.Load.MbpsIn = round2(m.Load.MbpsIn)
	m.Load.MbpsOut = round2(m.Load.MbpsOut)
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode node metadata: %w", err)
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit is %d; shorten the site, region, version or advertised addresses", ErrMetaTooLarge, len(b), MetaMaxSize)
	}
	return b, nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// decodeMeta parses the wire form sent by a peer.
func decodeMeta(name string, b []byte) (NodeMeta, error) {
	var m NodeMeta
	if len(b) == 0 {
		return NodeMeta{Name: name}, errors.New("no metadata")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return NodeMeta{Name: name}, fmt.Errorf("decode metadata of %s: %w", name, err)
	}
	m.Name = name
	return m, nil
}

// On returns a with every host replaced by ip, keeping the ports: the
// listeners' bound addresses (often the wildcard) as peers reach them on
// this node's gossip address. An address without a port becomes "".
func (a Addrs) On(ip netip.Addr) Addrs {
	on := func(hostPort string) string {
		_, p, err := net.SplitHostPort(hostPort)
		if err != nil {
			return ""
		}
		return net.JoinHostPort(ip.String(), p)
	}
	return Addrs{RTMP: on(a.RTMP), SRT: on(a.SRT), HTTPFLV: on(a.HTTPFLV), API: on(a.API), Backbone: on(a.Backbone)}
}
