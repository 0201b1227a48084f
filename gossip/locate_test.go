package gossip

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"slices"
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

// testTable is the table of config's locations-file test: the longest
// prefix wins (192.0.2.128/25 inside 192.0.2.0/24).
var testTable = LocationTable{Locations: []Location{
	{CIDR: netip.MustParsePrefix("203.0.113.0/24"), Site: "sin", Lat: 1.35, Lon: 103.8},
	{CIDR: netip.MustParsePrefix("198.51.100.0/24"), Site: "tyo", Lat: 35.68, Lon: 139.69},
	{CIDR: netip.MustParsePrefix("192.0.2.0/24"), Lat: 50.11, Lon: 8.68},
	{CIDR: netip.MustParsePrefix("192.0.2.128/25"), Site: "sin", Lat: 1.35, Lon: 103.82},
	{CIDR: netip.MustParsePrefix("2001:db8::/32"), Site: "fra", Lat: 50.11, Lon: 8.68},
}}

func TestLocationLookup(t *testing.T) {
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
		t.Run(l.addr, func(t *testing.T) {
			loc, ok := testTable.Lookup(netip.MustParseAddr(l.addr))
			if ok != l.ok || loc.Site != l.site {
				t.Errorf("Lookup = %q, %v; want %q, %v", loc.Site, ok, l.site, l.ok)
			}
		})
	}
}

func TestRankEdges(t *testing.T) {
	tab := testTable
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
	tab := testTable
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

// TestLocateReachable: the data path's word on an edge. An edge whose
// RTMP port refuses (its process died; gossip still has it alive) drops
// from first to last in LocateReachable's answer at once and is marked
// Unreachable; an edge that accepts keeps its rank.
func TestLocateReachable(t *testing.T) {
	c := siteCoords
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	a := startNode(t, "e-fra", NodeMeta{Role: RoleEdge, Site: "fra", Lat: c["fra"][0], Lon: c["fra"][1]}, "")
	sinMeta := NodeMeta{Role: RoleEdge, Site: "sin", Lat: c["sin"][0], Lon: c["sin"][1]}
	sinMeta.Addrs.RTMP = refused
	sin := startNode(t, "e-sin", sinMeta, "")
	tyoMeta := NodeMeta{Role: RoleEdge, Site: "tyo", Lat: c["tyo"][0], Lon: c["tyo"][1]}
	tyoMeta.Addrs.RTMP = open.Addr().String()
	tyo := startNode(t, "e-tyo", tyoMeta, "")
	for _, n := range []*testNode{sin, tyo} {
		if err := n.Join([]string{a.Addr().String()}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "3 members", func() bool { return aliveCount(a.Cluster) == 3 })
	client := netip.MustParseAddr("203.0.113.50") // sin
	if got, err := a.Locate(client, testTable); err != nil || !slices.Equal(names(got), []string{"e-sin", "e-tyo", "e-fra"}) {
		t.Fatalf("Locate(singapore) = %v, %v; want [e-sin e-tyo e-fra] by distance", names(got), err)
	}
	got, err := a.LocateReachable(context.Background(), client, testTable, 3)
	if err != nil || !slices.Equal(names(got), []string{"e-tyo", "e-fra", "e-sin"}) {
		t.Fatalf("LocateReachable(singapore) with e-sin's port refusing = %v, %v; want [e-tyo e-fra e-sin]", names(got), err)
	}
	if !got[2].Unreachable || got[0].Unreachable {
		t.Errorf("Unreachable: e-sin %v, e-tyo %v; want true, false", got[2].Unreachable, got[0].Unreachable)
	}
}

// TestReachTimeout: 3 RTTs, 500 ms to 1 s, where the RTT is at least
// the one from the coordinates (network coordinates start too low).
func TestReachTimeout(t *testing.T) {
	fra := NodeMeta{Lat: 50.11, Lon: 8.68}
	at := func(lat, lon float64, rtt time.Duration) Member {
		return Member{RTT: rtt, RTTKnown: rtt > 0, Meta: NodeMeta{Lat: lat, Lon: lon}}
	}
	tests := []struct {
		name string
		self NodeMeta
		m    Member
		want time.Duration
	}{
		{"nothing known: the floor", NodeMeta{}, Member{}, 500 * time.Millisecond},
		{"near: the floor", fra, at(50.05, 8.57, 4*time.Millisecond), 500 * time.Millisecond},
		{"syd, coordinates far too low: 3x the distance's 247 ms", fra, at(-33.87, 151.21, 45*time.Millisecond), 742 * time.Millisecond},
		{"measured above the distance", fra, at(1.35, 103.82, 300*time.Millisecond), 900 * time.Millisecond},
		{"very far: the cap", fra, at(1.35, 103.82, 800*time.Millisecond), time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := reachTimeout(tc.self, tc.m); got.Round(time.Millisecond) != tc.want {
				t.Errorf("reachTimeout = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLinkRTT: a backbone link is sized by the larger of the member's RTT
// estimate and the sites' distance, known when either is.
func TestLinkRTT(t *testing.T) {
	fra := NodeMeta{Lat: 50.11, Lon: 8.68}
	sin := NodeMeta{Lat: 1.35, Lon: 103.82}
	tests := []struct {
		name      string
		self      NodeMeta
		m         Member
		want      time.Duration
		wantKnown bool
	}{
		{"nothing known", NodeMeta{}, Member{}, 0, false},
		{"nothing measured: the distance (fra-sin 155 ms)", fra, Member{Meta: sin}, 154 * time.Millisecond, true},
		{"coordinates far too low after a join: the distance", fra, Member{RTT: 45 * time.Millisecond, RTTKnown: true, Meta: sin}, 154 * time.Millisecond, true},
		{"measured above the distance", fra, Member{RTT: 300 * time.Millisecond, RTTKnown: true, Meta: sin}, 300 * time.Millisecond, true},
		{"no sites: the estimate", NodeMeta{}, Member{RTT: 80 * time.Millisecond, RTTKnown: true}, 80 * time.Millisecond, true},
		{"a fresh ping above the filtered estimate: the ping", NodeMeta{},
			Member{RTT: 6 * time.Millisecond, RTTKnown: true, MeasuredRTT: 94 * time.Millisecond, MeasuredAt: time.Now()}, 94 * time.Millisecond, true},
		{"a stale ping: the estimate", NodeMeta{},
			Member{RTT: 6 * time.Millisecond, RTTKnown: true, MeasuredRTT: 94 * time.Millisecond, MeasuredAt: time.Now().Add(-time.Minute)}, 6 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, known := linkRTT(tc.self, tc.m)
			if got.Round(time.Millisecond) != tc.want || known != tc.wantKnown {
				t.Errorf("linkRTT = %s, %v; want %s, %v", got, known, tc.want, tc.wantKnown)
			}
		})
	}
}
