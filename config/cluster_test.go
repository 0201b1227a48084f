package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// TestClusterConfigErrors pins what a user reads for each [cluster],
// [[route]] and [[location]] problem: file, line, key path and reason.
func TestClusterConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must be one whole line of the error
	}{
		{name: "advertise not an address", toml: "[cluster]\nadvertise = \"host.example\"\n",
			want: []string{`c.toml:2: cluster.advertise: "host.example" is not an IP address or IP:port: write e.g. "203.0.113.7"`}},
		{name: "advertise ip:port", toml: "[cluster]\nadvertise = \"203.0.113.7:7946\"\n"},
		{name: "seed with a bad port", toml: "[cluster]\nseeds = [\"10.0.0.5:99999\"]\n",
			want: []string{`c.toml:2: cluster.seeds[0]: "10.0.0.5:99999" has a bad port: want 1..65535, e.g. "10.0.0.5:7946"`}},
		{name: "second seed not a host", toml: "[cluster]\nseeds = [\"10.0.0.5\", \"bad host!\"]\n",
			want: []string{`c.toml:2: cluster.seeds[1]: "bad host!" is not a host or host:port, e.g. "10.0.0.5:7946"`}},
		{name: "edge without seeds", toml: "[node]\nrole = \"edge\"\n[cluster]\nenabled = true\n",
			want: []string{`c.toml:3: cluster.seeds: an edge needs at least one seed (a center's gossip address) to find the cluster`}},
		{name: "relative key files", toml: "[cluster]\nkey_file = \"gossip.key\"\nbackbone_key_file = \"bb.key\"\n",
			want: []string{`c.toml:2: cluster.key_file: "gossip.key" is not an absolute path`, `c.toml:3: cluster.backbone_key_file: "bb.key" is not an absolute path`}},
		{name: "backbone on the srt port", toml: "[srt]\nlisten = \":8890\"\n[cluster]\nbackbone_listen = \":8890\"\n",
			want: []string{`c.toml:4: cluster.backbone_listen: ":8890" uses the same UDP port as srt.listen (":8890")`}},
		{name: "backbone listen not host:port", toml: "[cluster]\nbackbone_listen = \"9710\"\n",
			want: []string{`c.toml:2: cluster.backbone_listen: "9710" is not host:port: write e.g. ":1935" or "127.0.0.1:1935", or "" to disable`}},
		{name: "latency auto", toml: "[cluster]\nlatency = \"auto\"\n"},
		{name: "latency fixed", toml: "[cluster]\nlatency = \"400ms\"\n"},
		{name: "latency too long", toml: "[cluster]\nlatency = \"11s\"\n",
			want: []string{`c.toml:2: cluster.latency: 11s is more than 10s: write "auto" (4x the measured RTT) or a shorter duration`}},
		{name: "latency zero", toml: "[cluster]\nlatency = \"0s\"\n",
			want: []string{`c.toml:2: cluster.latency: "0s" is not a latency: write "auto" or e.g. "400ms"`}},
		{name: "latency not a duration", toml: "[cluster]\nlatency = \"fast\"\n",
			want: []string{`c.toml:2: cluster.latency: "fast" is not a duration: write e.g. "250ms", "10s" or "1m30s"; or write "auto" (4x the measured RTT)`}},
		{name: "latency bare integer", toml: "[cluster]\nlatency = 400\n",
			want: []string{`c.toml:2: cluster.latency: want a duration string such as "10s", got integer 400; or write "auto" (4x the measured RTT)`}},
		{name: "dscp too large", toml: "[cluster]\ndscp = 64\n",
			want: []string{`c.toml:2: cluster.dscp: 64 is not a DSCP value 0..63 (or -1 for no marking; 34 = AF41 is the default)`}},
		{name: "dscp unmarked", toml: "[cluster]\ndscp = -1\n"},
		{name: "dscp below -1", toml: "[cluster]\ndscp = -2\n",
			want: []string{`c.toml:2: cluster.dscp: -2 is not a DSCP value 0..63 (or -1 for no marking; 34 = AF41 is the default)`}},
		{name: "negative capacity", toml: "[cluster.capacity]\nmax_streams = -1\nmax_mbps = -0.5\n",
			want: []string{`c.toml:2: cluster.capacity.max_streams: -1 is negative: use 0 for unlimited`, `c.toml:3: cluster.capacity.max_mbps: -0.5 is negative: use 0 for unlimited`}},
		{name: "replace tuned", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nenabled = false\nmargin = \"0s\"\nratio = 1\nhold = \"0s\"\ncooldown = \"0s\"\n"},
		{name: "replace on a center", toml: "[node]\nrole = \"center\"\n[cluster.replace]\nhold = \"5s\"\n",
			want: []string{`c.toml:3: cluster.replace: only an edge re-places its streams, and node.role is "center": remove [cluster.replace] here (it would be ignored)`}},
		{name: "replace defaults on a center", toml: "[node]\nrole = \"center\"\n[cluster.replace]\nhold = \"3s\"\n"},
		{name: "replace ratio zero", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nratio = 0\n",
			want: []string{`c.toml:4: cluster.replace.ratio: 0 is not in (0, 1]: another center is clearly better at most this share of the current one's RTT (default 0.7)`}},
		{name: "replace ratio above one", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nratio = 1.5\n",
			want: []string{`c.toml:4: cluster.replace.ratio: 1.5 is not in (0, 1]: another center is clearly better at most this share of the current one's RTT (default 0.7)`}},
		{name: "replace ratio nan", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nratio = nan\n",
			want: []string{`c.toml:4: cluster.replace.ratio: NaN is not in (0, 1]: another center is clearly better at most this share of the current one's RTT (default 0.7)`}},
		{name: "replace negative margin", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nmargin = \"-20ms\"\n",
			want: []string{`c.toml:4: cluster.replace.margin: "-20ms" is negative`}},
		{name: "replace hold bare integer", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nhold = 3\n",
			want: []string{`c.toml:4: cluster.replace.hold: want a duration string such as "10s", got integer 3`}},
		{name: "replace margin too long", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nmargin = \"11s\"\n",
			want: []string{`c.toml:4: cluster.replace.margin: 11s is outside 0..10s`}},
		{name: "replace unknown key", toml: "[node]\nrole = \"edge\"\n[cluster.replace]\nhysteresis = \"3s\"\n",
			want: []string{`c.toml:4: cluster.replace.hysteresis: unknown key`}},
		{name: "route problems", toml: "[[route]]\npattern = \"live/*\"\nsites = [\"fra\"]\n[[route]]\npattern = \"[\"\nsites = []\n[[route]]\nsites = [\"Bad Site\"]\n",
			want: []string{`c.toml:5: route[1].pattern: "[" is not a glob: syntax error in pattern`, `c.toml:6: route[1].sites: must list at least one site, best first`, `c.toml:7: route[2].pattern: must not be empty: write e.g. "live/*"`, `c.toml:8: route[2].sites[0]: "Bad Site" must be 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit`}},
		{name: "location problems", toml: "[[location]]\ncidr = \"198.51.100.0/33\"\nlat = 91\nlon = -181\nsite = \"sin\"\n",
			want: []string{`c.toml:2: location[0].cidr: "198.51.100.0/33" is not a CIDR, e.g. "203.0.113.0/24"`, `c.toml:3: location[0].lat: 91 is not a latitude between -90 and 90`, `c.toml:4: location[0].lon: -181 is not a longitude between -180 and 180`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkLoadProblems(t, tc.toml, tc.want)
		})
	}
}

// TestLinkLatency: latency = "auto" is 4x the RTT with a 120ms floor; a
// fixed latency ignores the RTT.
func TestLinkLatency(t *testing.T) {
	tests := []struct {
		name   string
		toml   string // the value of cluster.latency; "" = unset
		rtt    time.Duration
		want   time.Duration
		String string
	}{
		{"unset is auto, RTT unknown", "", 0, 120 * time.Millisecond, "auto"},
		{"auto, near peer: the floor", `"auto"`, 4 * time.Millisecond, 120 * time.Millisecond, "auto"},
		{"auto at the floor", `"auto"`, 30 * time.Millisecond, 120 * time.Millisecond, "auto"},
		{"auto just above the floor", `"auto"`, 31 * time.Millisecond, 124 * time.Millisecond, "auto"},
		{"auto, 160 ms link", `"auto"`, 160 * time.Millisecond, 640 * time.Millisecond, "auto"},
		{"auto, 230 ms link", `" auto "`, 230 * time.Millisecond, 920 * time.Millisecond, "auto"},
		{"fixed, RTT ignored", `"400ms"`, 160 * time.Millisecond, 400 * time.Millisecond, "400ms"},
		{"fixed below the auto floor", `"80ms"`, 0, 80 * time.Millisecond, "80ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc struct {
				Cluster struct {
					Latency LinkLatency `toml:"latency"`
				} `toml:"cluster"`
			}
			src := "[cluster]\n"
			if tc.toml != "" {
				src += "latency = " + tc.toml + "\n"
			}
			if _, err := toml.Decode(src, &doc); err != nil {
				t.Fatal(err)
			}
			l := doc.Cluster.Latency
			if got := l.For(tc.rtt); got != tc.want {
				t.Errorf("For(%s) = %s, want %s", tc.rtt, got, tc.want)
			}
			if l.String() != tc.String {
				t.Errorf("String() = %q, want %q", l.String(), tc.String)
			}
			b, _ := l.MarshalText()
			if string(b) != tc.String {
				t.Errorf("MarshalText() = %q, want %q", b, tc.String)
			}
		})
	}
}

// loadString loads text as a config file.
func loadString(t *testing.T, text string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestGossipConfig pins how [node] and [cluster] become gossip.New's
// config: bind and advertise split into address and port, the metadata
// the node starts with, and a key file gossip cannot use refused by key.
func TestGossipConfig(t *testing.T) {
	badKey := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(badKey, []byte("not base64!"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		cluster          ClusterConfig
		bindAddr, advAdr string
		bindPort, advPrt int
		err              string
	}{
		{name: "defaults", bindAddr: "0.0.0.0", bindPort: 7946},
		{name: "bind with host", cluster: ClusterConfig{Bind: "10.0.0.1:8000"}, bindAddr: "10.0.0.1", bindPort: 8000},
		{name: "advertise ip", cluster: ClusterConfig{Bind: ":7000", Advertise: "203.0.113.7"}, bindAddr: "0.0.0.0", bindPort: 7000, advAdr: "203.0.113.7"},
		{name: "advertise ip:port", cluster: ClusterConfig{Advertise: "203.0.113.7:17946"}, bindAddr: "0.0.0.0", bindPort: 7946, advAdr: "203.0.113.7", advPrt: 17946},
		{name: "bind without port", cluster: ClusterConfig{Bind: "10.0.0.1"}, err: "cluster.bind: "},
		{name: "bind with a name for a port", cluster: ClusterConfig{Bind: ":gossip"}, err: `cluster.bind: ":gossip": bad port`},
		{name: "unusable key file", cluster: ClusterConfig{KeyFile: badKey}, err: "cluster.key_file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Node.Name, c.Node.Role, c.Node.Site, c.Node.Region = "n1", RoleCenter, "fra", "eu"
			c.Cluster = tt.cluster
			c.Cluster.Seeds = []string{"10.0.0.9:7946"}
			c.Cluster.Capacity.MaxStreams = 7
			gc, err := c.GossipConfig("v9")
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to start with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gc.BindAddr != tt.bindAddr || gc.BindPort != tt.bindPort || gc.AdvertiseAddr != tt.advAdr || gc.AdvertisePort != tt.advPrt {
				t.Errorf("bind %s:%d advertise %s:%d, want %s:%d advertise %s:%d", gc.BindAddr, gc.BindPort, gc.AdvertiseAddr, gc.AdvertisePort,
					tt.bindAddr, tt.bindPort, tt.advAdr, tt.advPrt)
			}
			m := gc.Meta
			if gc.NodeName != "n1" || m.Role != "center" || m.Site != "fra" || m.Region != "eu" || m.Version != "v9" || m.Capacity.MaxStreams != 7 {
				t.Errorf("name %q meta %+v", gc.NodeName, m)
			}
			if len(gc.Seeds) != 1 || gc.Seeds[0] != "10.0.0.9:7946" {
				t.Errorf("seeds %v", gc.Seeds)
			}
		})
	}
}
