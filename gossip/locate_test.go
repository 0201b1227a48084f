package gossip

import (
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

var siteCoords = map[string][2]float64{
	"fra": {50.11, 8.68},
	"sin": {1.35, 103.82},
	"tyo": {35.68, 139.69},
}

func edgeAt(name, site string, load, max int) Member {
	c := siteCoords[site]
	return Member{Name: name, State: StateAlive, Meta: NodeMeta{Name: name, Role: RoleEdge, Site: site,
		Lat: c[0], Lon: c[1], Load: Load{Streams: load}, Capacity: Capacity{MaxStreams: max}}}
}

func TestHaversine(t *testing.T) {
	tests := []struct {
		a, b string
		km   float64
	}{
		{"fra", "sin", 10260},
		{"fra", "tyo", 9340},
		{"sin", "tyo", 5320},
	}
	for _, tt := range tests {
		t.Run(tt.a+"-"+tt.b, func(t *testing.T) {
			a, b := siteCoords[tt.a], siteCoords[tt.b]
			got := Haversine(a[0], a[1], b[0], b[1])
			if math.Abs(got-tt.km)/tt.km > 0.02 {
				t.Errorf("Haversine = %.0f km, want about %.0f", got, tt.km)
			}
			if back := Haversine(b[0], b[1], a[0], a[1]); math.Abs(back-got) > 1e-6 {
				t.Errorf("not symmetric: %v vs %v", got, back)
			}
		})
	}
}

const tableTOML = `
[[location]]
cidr = "203.0.113.0/24"
site = "sin"
lat = 1.35
lon = 103.8

[[location]]
cidr = "198.51.100.0/24"
site = "tyo"
lat = 35.68
lon = 139.69

[[location]]
cidr = "192.0.2.0/24"
lat = 50.11
lon = 8.68

[[location]]
cidr = "192.0.2.128/25"
site = "sin"
lat = 1.35
lon = 103.82

[[location]]
cidr = "2001:db8::/32"
site = "fra"
lat = 50.11
lon = 8.68
`

func TestParseLocationTable(t *testing.T) {
	tab, err := ParseLocationTable("loc.toml", []byte(tableTOML))
	if err != nil {
		t.Fatal(err)
	}
	lookups := []struct {
		addr string
		site string
		ok   bool
	}{
		{"203.0.113.9", "sin", true},
		{"::ffff:203.0.113.9", "sin", true},
		{"192.0.2.1", "", true},
		{"192.0.2.200", "sin", true}, // longest prefix
		{"2001:db8::1", "fra", true},
		{"10.0.0.1", "", false},
	}
	for _, l := range lookups {
		t.Run("lookup "+l.addr, func(t *testing.T) {
			loc, ok := tab.Lookup(netip.MustParseAddr(l.addr))
			if ok != l.ok || loc.Site != l.site {
				t.Errorf("Lookup = %q, %v; want %q, %v", loc.Site, ok, l.site, l.ok)
			}
		})
	}

	bad := []struct {
		name, toml, want string
	}{
		{"unknown key", "[[location]]\ncidr = \"10.0.0.0/8\"\nlat = 1\nlon = 2\ncity = \"x\"\n", "unknown key location.city"},
		{"bad cidr", "[[location]]\ncidr = \"10.0.0/8\"\nlat = 1\nlon = 2\n", "location[0].cidr"},
		{"missing lat", "[[location]]\ncidr = \"10.0.0.0/8\"\nlon = 2\n", "lat and lon are required"},
		{"lat out of range", "[[location]]\ncidr = \"10.0.0.0/8\"\nlat = 91\nlon = 2\n", "out of range"},
		{"syntax", "[[location]]\ncidr = \n", "loc.toml:2"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := ParseLocationTable("loc.toml", []byte(b.toml))
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Errorf("err = %v, want it to contain %q", err, b.want)
			}
		})
	}
}

func TestLoadLocationTable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "loc.toml")
	if err := os.WriteFile(p, []byte(tableTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := LoadLocationTable(p)
	if err != nil || len(tab.Locations) != 5 {
		t.Fatalf("LoadLocationTable = %d locations, %v; want 5", len(tab.Locations), err)
	}
	if _, err := LoadLocationTable(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: err = %v, want it to name the file", err)
	}
}

func TestRankEdges(t *testing.T) {
	tab, err := ParseLocationTable("loc.toml", []byte(tableTOML))
	if err != nil {
		t.Fatal(err)
	}
	fra := edgeAt("e-fra", "fra", 5, 10)
	sin := edgeAt("e-sin", "sin", 5, 10)
	tyo := edgeAt("e-tyo", "tyo", 5, 10)
	sinLight := edgeAt("e-sin2", "sin", 1, 10)
	sinFull := edgeAt("e-sin3", "sin", 10, 10)
	sinDead := edgeAt("e-sin4", "sin", 0, 10)
	sinDead.State = StateDead
	sinSuspect := edgeAt("e-sin5", "sin", 0, 10)
	sinSuspect.State = StateSuspect
	centerOnly := edgeAt("c-sin", "sin", 0, 10)
	centerOnly.Meta.Role = RoleCenter
	nowhere := edgeAt("e-x", "fra", 0, 10)
	nowhere.Meta.Lat, nowhere.Meta.Lon, nowhere.Meta.Site = 0, 0, ""
	sinUnreachable := edgeAt("e-sin6", "sin", 0, 10)
	sinUnreachable.Unreachable = true

	tests := []struct {
		name    string
		members []Member
		client  string
		want    []string
	}{
		{"singapore client", []Member{fra, sin, tyo}, "203.0.113.7", []string{"e-sin", "e-tyo", "e-fra"}},
		{"tokyo client", []Member{fra, sin, tyo}, "198.51.100.7", []string{"e-tyo", "e-sin", "e-fra"}},
		{"frankfurt client (no site in table)", []Member{sin, tyo, fra}, "192.0.2.1", []string{"e-fra", "e-tyo", "e-sin"}},
		{"same site: lighter load first", []Member{sin, sinLight, fra}, "203.0.113.7", []string{"e-sin2", "e-sin", "e-fra"}},
		{"full, dead, suspect edges and centers skipped", []Member{sinFull, sinDead, sinSuspect, centerOnly, tyo}, "203.0.113.7", []string{"e-tyo"}},
		{"edge without coordinates last", []Member{nowhere, tyo}, "203.0.113.7", []string{"e-tyo", "e-x"}},
		{"unmapped client: by load", []Member{fra, sinLight, tyo}, "10.1.2.3", []string{"e-sin2", "e-fra", "e-tyo"}},
		{"no edge left", []Member{sinFull, sinDead}, "203.0.113.7", nil},
		{"unreachable on the data path: last", []Member{sinUnreachable, fra, tyo}, "203.0.113.7", []string{"e-tyo", "e-fra", "e-sin6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, ok := tab.Lookup(netip.MustParseAddr(tt.client))
			got, why := RankEdges(tt.members, loc, ok)
			if !slices.Equal(names(got), tt.want) {
				t.Errorf("RankEdges = %v, want %v (%s)", names(got), tt.want, why)
			}
		})
	}
}

func TestLocateLive(t *testing.T) {
	tab, err := ParseLocationTable("loc.toml", []byte(tableTOML))
	if err != nil {
		t.Fatal(err)
	}
	c := siteCoords
	a := startNode(t, "e-fra", NodeMeta{Role: RoleEdge, Site: "fra", Lat: c["fra"][0], Lon: c["fra"][1]}, "")
	b := startNode(t, "e-tyo", NodeMeta{Role: RoleEdge, Site: "tyo", Lat: c["tyo"][0], Lon: c["tyo"][1]}, "")
	if err := b.Join([]string{a.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "2 members", func() bool { return aliveCount(a.Cluster) == 2 })
	got, err := a.Locate(netip.MustParseAddr("203.0.113.50"), tab)
	if err != nil || !slices.Equal(names(got), []string{"e-tyo", "e-fra"}) {
		t.Errorf("Locate(singapore) = %v, %v; want [e-tyo e-fra]", names(got), err)
	}
	b.SetLoad(Load{Streams: 3})
	b.SetMeta(NodeMeta{Role: RoleEdge, Site: "tyo", Lat: c["tyo"][0], Lon: c["tyo"][1], Load: Load{Streams: 3}, Capacity: Capacity{MaxStreams: 3}})
	poll.Until(t, 5*time.Second, "e-tyo to be full", func() bool {
		got, _ := a.Locate(netip.MustParseAddr("203.0.113.50"), tab)
		return slices.Equal(names(got), []string{"e-fra"})
	})
	if _, err := a.Locate(netip.MustParseAddr("203.0.113.50"), LocationTable{}); err != nil {
		t.Errorf("Locate without table: %v", err)
	}
	a.SetMeta(NodeMeta{Role: RoleEdge, Capacity: Capacity{MaxStreams: 1}, Load: Load{Streams: 1}})
	_, err = a.Locate(netip.MustParseAddr("203.0.113.50"), tab)
	if !errors.Is(err, ErrNoEdge) {
		t.Errorf("all edges full: err = %v, want ErrNoEdge", err)
	}
}
