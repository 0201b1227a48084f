package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
)

// Cluster defaults, applied in code so that the zero [cluster] section is
// the built-in default (configs/standalone.toml spells out Default()).
const (
	DefaultGossipBind     = ":7946"
	DefaultBackboneListen = ":9710"
	// MinBackboneLatency is the floor of latency = "auto".
	MinBackboneLatency = 120 * time.Millisecond
	// BackboneIdleTimeout is how long a backbone link may stay silent before
	// either side declares the peer dead (the data path's own failure
	// detector; it does not wait for gossip).
	BackboneIdleTimeout = time.Second
)

// ClusterConfig is [cluster]: gossip membership and the SRT backbone.
type ClusterConfig struct {
	Enabled bool `toml:"enabled"`
	// Bind is the gossip listen address (TCP and UDP), default ":7946".
	Bind string `toml:"bind"`
	// Advertise is the address peers and clients use to reach this node:
	// an IP, or IP:port for the gossip port. "" = derived from bind.
	Advertise string   `toml:"advertise"`
	Seeds     []string `toml:"seeds"`    // "host", "host:port"
	KeyFile   string   `toml:"key_file"` // gossip AES key (base64); see `relaymesh keygen`
	// BackboneListen is the SRT listener for edges' uplinks and other
	// centers' pulls (centers only), default ":9710".
	BackboneListen  string `toml:"backbone_listen"`
	BackboneKeyFile string `toml:"backbone_key_file"` // passphrase (10..79 bytes) for AES on backbone links
	// Latency is the SRT latency of backbone links: "auto" (4x the measured
	// RTT, at least 120ms) or a duration.
	Latency LinkLatency `toml:"latency"`
	// DSCP marks backbone packets: 0 = the default AF41 (34), -1 = unmarked.
	DSCP          int            `toml:"dscp"`
	Capacity      CapacityConfig `toml:"capacity"`
	LocationsFile string         `toml:"locations_file"` // TOML file of [[location]] tables
	// Replace is [cluster.replace]: an edge's moves of a stream onto a
	// clearly better center (its default is Default()'s, not the zero one).
	Replace ReplaceConfig `toml:"replace"`
}

// ReplaceConfig is [cluster.replace] (edges): a stream placed on a center
// before the RTTs were measured, or whose network changed, moves
// make-before-break to another center whose RTT is lower by margin and at
// most ratio of the current one's, on every check for hold; one uplink
// moves at most once per cooldown (health moves included). A reload
// applies it at the next check (every second); enabled = false stops
// re-placement, not failover nor health moves.
type ReplaceConfig struct {
	Enabled  bool     `toml:"enabled"`
	Margin   Duration `toml:"margin"`
	Ratio    float64  `toml:"ratio"`
	Hold     Duration `toml:"hold"`
	Cooldown Duration `toml:"cooldown"`
}

// DefaultReplace is [cluster.replace] by default: a move needs 20 ms and
// 0.7x better for 3 s, at most one per 30 s (edge.DefaultReplacement).
func DefaultReplace() ReplaceConfig {
	return ReplaceConfig{Enabled: true, Margin: Duration(20 * time.Millisecond), Ratio: 0.7,
		Hold: Duration(3 * time.Second), Cooldown: Duration(30 * time.Second)}
}

// CapacityConfig is [cluster.capacity]: the most this node takes. 0 = no limit.
type CapacityConfig struct {
	MaxStreams int     `toml:"max_streams"`
	MaxMbps    float64 `toml:"max_mbps"`
}

// LinkLatency is a backbone latency: "auto" (the zero value) or a duration.
type LinkLatency Duration

// Auto reports whether the latency follows the measured RTT.
func (l LinkLatency) Auto() bool { return l == 0 }

func (l LinkLatency) String() string {
	if l.Auto() {
		return "auto"
	}
	return Duration(l).String()
}

// MarshalText writes "auto" or a duration string.
func (l LinkLatency) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalTOML implements toml.Unmarshaler.
func (l *LinkLatency) UnmarshalTOML(v any) error {
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "auto" {
		*l = 0
		return nil
	}
	var d Duration
	if err := d.UnmarshalTOML(v); err != nil {
		return fmt.Errorf("%w; or write \"auto\" (4x the measured RTT)", err)
	}
	if d == 0 {
		return fmt.Errorf("\"0s\" is not a latency: write \"auto\" or e.g. \"400ms\"")
	}
	*l = LinkLatency(d)
	return nil
}

// For returns the latency of a link with the given RTT (0 = unknown).
func (l LinkLatency) For(rtt time.Duration) time.Duration {
	if !l.Auto() {
		return Duration(l).Duration()
	}
	return max(4*rtt, MinBackboneLatency)
}

// RouteConfig is one [[route]]: streams matching pattern go to these sites.
type RouteConfig struct {
	Pattern string   `toml:"pattern"` // glob over "app/name", e.g. "live/*"
	Sites   []string `toml:"sites"`   // best first
	Strict  bool     `toml:"strict"`  // only these sites, never another
	// Redundancy "dual" sends matching streams over two backbone legs to
	// two centers, merged by RTP sequence number ("" or "single" = one).
	Redundancy string `toml:"redundancy"`
	// RedundancyWindow is the merge's reorder window; 0 = the larger of
	// the two legs' SRT latencies.
	RedundancyWindow Duration `toml:"redundancy_window"`
}

// LocationConfig is one [[location]]: a client address range on the map.
type LocationConfig struct {
	CIDR string  `toml:"cidr"`
	Site string  `toml:"site"` // optional: edges of this site are preferred
	Lat  float64 `toml:"lat"`
	Lon  float64 `toml:"lon"`
}

// GossipBind returns the gossip listen address with the default filled in.
func (c ClusterConfig) GossipBind() string {
	if c.Bind == "" {
		return DefaultGossipBind
	}
	return c.Bind
}

// BackboneAddr returns the backbone listen address with the default.
func (c ClusterConfig) BackboneAddr() string {
	if c.BackboneListen == "" {
		return DefaultBackboneListen
	}
	return c.BackboneListen
}

// DSCPMark returns the DSCP value for backbone sockets (0 = unmarked).
func (c ClusterConfig) DSCPMark() int {
	switch {
	case c.DSCP < 0:
		return 0
	case c.DSCP == 0:
		return 34 // AF41
	}
	return c.DSCP
}

// RoutesOf converts the [[route]] tables for the gossip package.
func RoutesOf(rs []RouteConfig) []gossip.Route {
	out := make([]gossip.Route, 0, len(rs))
	for _, r := range rs {
		out = append(out, gossip.Route{Pattern: r.Pattern, Sites: r.Sites, Strict: r.Strict})
	}
	return out
}

// LocationTable builds the table from [[location]] and locations_file
// (the file's entries follow the inline ones).
func (c *Config) LocationTable() (gossip.LocationTable, error) {
	var t gossip.LocationTable
	for i, l := range c.Locations {
		p, err := netip.ParsePrefix(l.CIDR)
		if err != nil {
			return t, fmt.Errorf("location[%d].cidr: %w", i, err)
		}
		t.Locations = append(t.Locations, gossip.Location{CIDR: p.Masked(), Site: l.Site, Lat: l.Lat, Lon: l.Lon})
	}
	if c.Cluster.LocationsFile != "" {
		ft, err := LoadLocationTable(c.Cluster.LocationsFile)
		if err != nil {
			return t, fmt.Errorf("cluster.locations_file: %w", err)
		}
		t.Locations = append(t.Locations, ft.Locations...)
	}
	return t, nil
}

// LoadBackbonePassphrase reads cluster.backbone_key_file: its text without
// surrounding whitespace, 10 to 79 bytes. "" when no file is set.
func (c ClusterConfig) LoadBackbonePassphrase() (string, error) {
	if c.BackboneKeyFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(c.BackboneKeyFile)
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(string(data))
	if len(p) < 10 || len(p) > 79 {
		return "", fmt.Errorf("%s holds %d bytes: an SRT passphrase has 10 to 79; make one with `head -c 32 /dev/urandom | base64 > %s`", c.BackboneKeyFile, len(p), c.BackboneKeyFile)
	}
	return p, nil
}

func (c *Config) validateCluster(ps *cfgProblems) {
	at := cfgPath("cluster")
	cl := &c.Cluster
	ps.listen(at.Key("bind"), cl.Bind)
	if cl.Advertise != "" {
		if _, err := netip.ParseAddr(cl.Advertise); err != nil {
			if _, err := netip.ParseAddrPort(cl.Advertise); err != nil {
				ps.add(at.Key("advertise"), "%q is not an IP address or IP:port: write e.g. \"203.0.113.7\"", cl.Advertise)
			}
		}
	}
	for i, s := range cl.Seeds {
		host := s
		if h, p, err := net.SplitHostPort(s); err == nil {
			host = h
			if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
				ps.add(at.Key("seeds").Index(i), "%q has a bad port: want 1..65535, e.g. \"10.0.0.5:7946\"", s)
				continue
			}
		}
		if _, err := netip.ParseAddr(host); err != nil && !cfgHostRe.MatchString(host) {
			ps.add(at.Key("seeds").Index(i), "%q is not a host or host:port, e.g. \"10.0.0.5:7946\"", s)
		}
	}
	if cl.Enabled && len(cl.Seeds) == 0 && c.Node.Role == RoleEdge {
		ps.add(at.Key("seeds"), "an edge needs at least one seed (a center's gossip address) to find the cluster")
	}
	for _, f := range []struct {
		key, path string
	}{{"key_file", cl.KeyFile}, {"backbone_key_file", cl.BackboneKeyFile}, {"locations_file", cl.LocationsFile}} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			ps.add(at.Key(f.key), "%q is not an absolute path", f.path)
		}
	}
	ps.listen(at.Key("backbone_listen"), cl.BackboneListen)
	if cl.BackboneListen != "" && c.SRT.Listen != "" && cfgListenersClash(cl.BackboneListen, c.SRT.Listen) {
		ps.add(at.Key("backbone_listen"), "%q uses the same UDP port as srt.listen (%q)", cl.BackboneListen, c.SRT.Listen)
	}
	if cl.Latency > LinkLatency(10*time.Second) {
		ps.add(at.Key("latency"), "%s is more than 10s: write \"auto\" (4x the measured RTT) or a shorter duration", cl.Latency)
	}
	if cl.DSCP < -1 || cl.DSCP > 63 {
		ps.add(at.Key("dscp"), "%d is not a DSCP value 0..63 (or -1 for no marking; 34 = AF41 is the default)", cl.DSCP)
	}
	ps.count(at.Key("capacity").Key("max_streams"), cl.Capacity.MaxStreams)
	if !(cl.Capacity.MaxMbps >= 0) {
		ps.add(at.Key("capacity").Key("max_mbps"), "%v is negative: use 0 for unlimited", cl.Capacity.MaxMbps)
	}
	rp := at.Key("replace")
	if c.Node.Role != RoleEdge && cl.Replace != DefaultReplace() {
		ps.add(rp, "only an edge re-places its streams, and node.role is %q: remove [cluster.replace] here (it would be ignored)", c.Node.Role)
	}
	if r := cl.Replace.Ratio; !(r > 0 && r <= 1) {
		ps.add(rp.Key("ratio"), "%v is not in (0, 1]: another center is clearly better at most this share of the current one's RTT (default 0.7)", r)
	}
	for _, f := range []struct {
		key string
		d   Duration
		max time.Duration
	}{{"margin", cl.Replace.Margin, 10 * time.Second}, {"hold", cl.Replace.Hold, time.Hour}, {"cooldown", cl.Replace.Cooldown, 24 * time.Hour}} {
		if f.d.Duration() < 0 || f.d.Duration() > f.max {
			ps.add(rp.Key(f.key), "%s is outside 0..%s", f.d.Duration(), f.max)
		}
	}
	for i, r := range c.Routes {
		rat := cfgPath("route").Index(i)
		if r.Pattern == "" {
			ps.add(rat.Key("pattern"), "must not be empty: write e.g. \"live/*\"")
		} else if _, err := path.Match(r.Pattern, "a/b"); err != nil {
			ps.add(rat.Key("pattern"), "%q is not a glob: %v", r.Pattern, err)
		}
		if len(r.Sites) == 0 {
			ps.add(rat.Key("sites"), "must list at least one site, best first")
		}
		for j, s := range r.Sites {
			ps.name(rat.Key("sites").Index(j), s)
		}
		if r.Redundancy != "" && r.Redundancy != "single" && r.Redundancy != "dual" {
			ps.add(rat.Key("redundancy"), "%q is not \"single\" or \"dual\"", r.Redundancy)
		}
		if w := r.RedundancyWindow.Duration(); w < 0 || w > 10*time.Second {
			ps.add(rat.Key("redundancy_window"), "%s is outside 0..10s (0 = the larger leg's SRT latency)", w)
		}
	}
	for i, l := range c.Locations {
		lat := cfgPath("location").Index(i)
		if _, err := netip.ParsePrefix(l.CIDR); err != nil {
			ps.add(lat.Key("cidr"), "%q is not a CIDR, e.g. \"203.0.113.0/24\"", l.CIDR)
		}
		if l.Site != "" {
			ps.name(lat.Key("site"), l.Site)
		}
		if !(l.Lat >= -90 && l.Lat <= 90) {
			ps.add(lat.Key("lat"), "%v is not a latitude between -90 and 90", l.Lat)
		}
		if !(l.Lon >= -180 && l.Lon <= 180) {
			ps.add(lat.Key("lon"), "%v is not a longitude between -180 and 180", l.Lon)
		}
	}
}

// GossipConfig is what gossip.New takes for this node: its name, the
// gossip bind and advertised address, the seeds and key file, and the
// metadata it starts with (role, place, capacity, version). The event
// hook (OnEvent) and the advertised listener addresses are the caller's.
func (c *Config) GossipConfig(version string) (gossip.Config, error) {
	cc := c.Cluster
	gc := gossip.DefaultConfig()
	gc.NodeName = c.Node.ResolveName()
	host, port, err := splitHostPort(cc.GossipBind())
	if err != nil {
		return gc, fmt.Errorf("cluster.bind: %w", err)
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
		Role: gossip.Role(c.Node.Role), Site: c.Node.Site, Region: c.Node.Region,
		Lat: c.Node.Lat, Lon: c.Node.Lon, Version: version,
		Capacity: cc.GossipCapacity(),
	}
	if cc.KeyFile != "" {
		if _, err := gossip.LoadKey(cc.KeyFile); err != nil {
			return gc, fmt.Errorf("cluster.key_file: %w", err)
		}
	}
	return gc, nil
}

// GossipCapacity is [cluster.capacity] as the node advertises it.
func (c ClusterConfig) GossipCapacity() gossip.Capacity {
	return gossip.Capacity{MaxStreams: c.Capacity.MaxStreams, MaxMbps: c.Capacity.MaxMbps}
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
