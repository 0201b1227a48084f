package gossip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func fullMeta() NodeMeta {
	return NodeMeta{
		Name: "fra-center-01", Role: RoleCenter, Site: "fra", Region: "eu-central",
		Lat: 50.11, Lon: 8.68,
		Addrs: Addrs{
			RTMP: "[2001:db8:1234:5678::10]:1935", SRT: "[2001:db8:1234:5678::10]:9000",
			HTTPFLV: "[2001:db8:1234:5678::10]:8080", API: "[2001:db8:1234:5678::10]:8081",
			Backbone: "[2001:db8:1234:5678::10]:9001",
		},
		Load:     Load{Streams: 1234, MbpsIn: 9876.54321, MbpsOut: 12345.678},
		Capacity: Capacity{MaxStreams: 5000, MaxMbps: 40000},
		Version:  "1.2.3-rc.4+g0123456789ab",
	}
}

func TestMetaRoundTrip(t *testing.T) {
	m := fullMeta()
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("realistic full metadata encodes to %d of %d bytes", len(b), MetaMaxSize)
	got, err := decodeMeta(m.Name, b)
	if err != nil {
		t.Fatal(err)
	}
	m.Load.MbpsIn, m.Load.MbpsOut = 9876.54, 12345.68 // rounded on the wire
	if got != m {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestMetaLimit(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name   string
		mutate func(*NodeMeta)
		tooBig bool
	}{
		{"realistic", func(*NodeMeta) {}, false},
		{"long site", func(m *NodeMeta) { m.Site = long + long }, true},
		{"long addresses", func(m *NodeMeta) { m.Addrs.RTMP, m.Addrs.SRT = long, long }, true},
		{"long version", func(m *NodeMeta) { m.Version = long + long + long }, true},
		{"name is not encoded", func(m *NodeMeta) { m.Name = long + long + long }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fullMeta()
			tt.mutate(&m)
			err := m.Validate()
			if tt.tooBig != errors.Is(err, ErrMetaTooLarge) {
				t.Errorf("Validate = %v, want too large = %v", err, tt.tooBig)
			}
			if tt.tooBig && !strings.Contains(err.Error(), "limit is 512") {
				t.Errorf("error %q does not state the limit", err)
			}
		})
	}
}

func TestMetaValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*NodeMeta)
		want   string
	}{
		{"bad role", func(m *NodeMeta) { m.Role = "relay" }, "role"},
		{"bad lat", func(m *NodeMeta) { m.Lat = 100 }, "lat"},
		{"bad lon", func(m *NodeMeta) { m.Lon = -200 }, "lon"},
		{"negative load", func(m *NodeMeta) { m.Load.Streams = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fullMeta()
			tt.mutate(&m)
			if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error about %s", err, tt.want)
			}
		})
	}
}

func TestHasSpare(t *testing.T) {
	tests := []struct {
		name string
		load Load
		cap  Capacity
		want bool
	}{
		{"unlimited", Load{Streams: 1000, MbpsIn: 1e6}, Capacity{}, true},
		{"streams left", Load{Streams: 9}, Capacity{MaxStreams: 10}, true},
		{"streams full", Load{Streams: 10}, Capacity{MaxStreams: 10}, false},
		{"mbps full (in+out)", Load{MbpsIn: 40, MbpsOut: 60}, Capacity{MaxMbps: 100}, false},
		{"mbps left", Load{MbpsIn: 40, MbpsOut: 59}, Capacity{MaxMbps: 100}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NodeMeta{Role: RoleEdge, Load: tt.load, Capacity: tt.cap}
			if got := m.HasSpare(); got != tt.want {
				t.Errorf("HasSpare = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzDecodeMeta(f *testing.F) {
	b, _ := fullMeta().encode()
	f.Add(b)
	f.Add([]byte(`{"r":"edge"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta("n", b)
		if err != nil {
			return
		}
		if m.Name != "n" {
			t.Fatalf("name %q, want n", m.Name)
		}
		_ = m.HasSpare()
		_ = m.Utilization()
	})
}

// TestAddrsOn: the bound listener addresses are advertised on the gossip
// IP with their own ports; one that is off stays off.
func TestAddrsOn(t *testing.T) {
	tests := []struct {
		name string
		ip   string
		in   Addrs
		want Addrs
	}{
		{"wildcards", "10.0.0.5", Addrs{RTMP: "[::]:1935", SRT: "0.0.0.0:8890", HTTPFLV: ":8080", Backbone: "[::]:9710"},
			Addrs{RTMP: "10.0.0.5:1935", SRT: "10.0.0.5:8890", HTTPFLV: "10.0.0.5:8080", Backbone: "10.0.0.5:9710"}},
		{"off stays off", "10.0.0.5", Addrs{RTMP: "127.0.0.1:1935", API: ""}, Addrs{RTMP: "10.0.0.5:1935"}},
		{"IPv6 gossip address", "2001:db8::7", Addrs{API: "0.0.0.0:8900"}, Addrs{API: "[2001:db8::7]:8900"}},
		{"no port", "10.0.0.5", Addrs{SRT: "srt-host"}, Addrs{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.On(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Errorf("On = %+v, want %+v", got, tt.want)
			}
		})
	}
}
