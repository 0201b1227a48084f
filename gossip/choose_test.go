package gossip

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

func center(name, site string, rtt time.Duration, load, max int) Member {
	return Member{
		Name:     name,
		State:    StateAlive,
		RTT:      rtt,
		RTTKnown: rtt > 0,
		Meta: NodeMeta{Name: name, Role: RoleCenter, Site: site,
			Load: Load{Streams: load}, Capacity: Capacity{MaxStreams: max}},
	}
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func TestRankCenters(t *testing.T) {
	fra := center("fra1", "fra", 20*time.Millisecond, 1, 10)
	sin := center("sin1", "sin", 150*time.Millisecond, 1, 10)
	tyo := center("tyo1", "tyo", 250*time.Millisecond, 1, 10)
	fullFra := center("fra2", "fra", 10*time.Millisecond, 10, 10)
	deadTyo := center("tyo2", "tyo", 5*time.Millisecond, 0, 10)
	deadTyo.State = StateDead
	suspectSin := center("sin2", "sin", 5*time.Millisecond, 0, 10)
	suspectSin.State = StateSuspect
	edge := center("edge1", "fra", time.Millisecond, 0, 0)
	edge.Meta.Role = RoleEdge
	standalone := center("solo", "fra", 0, 0, 0)
	standalone.Meta.Role = RoleStandalone
	standalone.RTT, standalone.RTTKnown = 0, true
	noRTT := center("sin3", "sin", 0, 0, 10)
	mbpsFull := center("fra3", "fra", 15*time.Millisecond, 0, 0)
	mbpsFull.Meta.Capacity.MaxMbps = 100
	mbpsFull.Meta.Load.MbpsIn, mbpsFull.Meta.Load.MbpsOut = 30, 70
	fraLight := center("fra4", "fra", 20*time.Millisecond, 0, 10)

	all := []Member{tyo, sin, fra, fullFra, deadTyo, suspectSin, edge, mbpsFull}
	rules := []Route{
		{Pattern: "asia/*", Sites: []string{"sin", "tyo"}},
		{Pattern: "jp/*", Sites: []string{"tyo"}, Strict: true},
		{Pattern: "*/*", Sites: []string{"tyo", "fra"}},
	}
	tests := []struct {
		name    string
		members []Member
		stream  string
		rules   []Route
		exclude []string
		host    string
		want    []string
	}{
		{"lowest RTT by default", all, "live/a", nil, nil, "", []string{"fra1", "sin1", "tyo1"}},
		{"rule orders sites, others follow", all, "asia/a", rules, nil, "", []string{"sin1", "tyo1", "fra1"}},
		{"strict rule keeps to its sites", all, "jp/a", rules, nil, "", []string{"tyo1"}},
		{"first matching rule wins", all, "live/a", rules, nil, "", []string{"tyo1", "fra1", "sin1"}},
		{"exclude for failover", all, "asia/a", rules, []string{"sin1"}, "", []string{"tyo1", "fra1"}},
		{"nothing left", all, "jp/a", rules, []string{"tyo1"}, "", nil},
		{"current host first even when full", all, "live/a", nil, nil, "fra2", []string{"fra2", "fra1", "sin1", "tyo1"}},
		{"standalone counts as center, local RTT 0", []Member{sin, standalone}, "live/a", nil, nil, "", []string{"solo", "sin1"}},
		{"unknown RTT last", []Member{noRTT, sin}, "live/a", nil, nil, "", []string{"sin1", "sin3"}},
		{"equal RTT: lighter load first", []Member{fra, fraLight}, "live/a", nil, nil, "", []string{"fra4", "fra1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := RankCenters(tt.members, tt.stream, tt.rules, tt.exclude, tt.host)
			if !slices.Equal(names(got), tt.want) {
				t.Errorf("RankCenters = %v, want %v (%s)", names(got), tt.want, why)
			}
		})
	}
}

// TestChooseCenterLive checks the Cluster methods on a real cluster.
func TestChooseCenterLive(t *testing.T) {
	edge := startNode(t, "edge", NodeMeta{Role: RoleEdge, Site: "fra"}, "")
	c1 := startNode(t, "c-fra", NodeMeta{Role: RoleCenter, Site: "fra"}, "")
	c2 := startNode(t, "c-sin", NodeMeta{Role: RoleCenter, Site: "sin"}, "")
	for _, n := range []*testNode{c1, c2} {
		if err := n.Join([]string{edge.Addr().String()}); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "3 members", func() bool { return aliveCount(edge.Cluster) == 3 })
	rules := []Route{{Pattern: "live/*", Sites: []string{"sin", "fra"}}}
	m, err := edge.ChooseCenter("live/x", rules, nil)
	if err != nil || m.Name != "c-sin" {
		t.Fatalf("ChooseCenter = %v, %v; want c-sin", m.Name, err)
	}
	if got := names(edge.CenterCandidates("live/x", rules, nil)); !slices.Equal(got, []string{"c-sin", "c-fra"}) {
		t.Errorf("CenterCandidates = %v, want [c-sin c-fra]", got)
	}
	_, err = edge.ChooseCenter("live/x", rules, []string{"c-sin", "c-fra"})
	if !errors.Is(err, ErrNoCenter) {
		t.Errorf("all excluded: err = %v, want ErrNoCenter", err)
	}
	t.Logf("error shown: %v", err)
}

// TestRankCentersByDistanceUntilMeasured: before this node measured the
// RTTs (it just started), the centers nearest by coordinates come first;
// a measured RTT is used as soon as it is known.
func TestRankCentersByDistanceUntilMeasured(t *testing.T) {
	self := Member{Name: "eus", Local: true, State: StateAlive, Meta: NodeMeta{Name: "eus", Role: RoleEdge, Lat: 40.7, Lon: -74.0}}
	at := func(m Member, lat, lon float64) Member { m.Meta.Lat, m.Meta.Lon = lat, lon; return m }
	fra := at(center("fra", "fra", 0, 0, 10), 50.11, 8.68)
	sin := at(center("sin", "sin", 0, 0, 10), 1.35, 103.82)
	tyo := at(center("tyo", "tyo", 0, 0, 10), 35.68, 139.69)
	nowhere := center("zzz", "zzz", 0, 0, 10)
	tests := []struct {
		name    string
		members []Member
		want    []string
	}{
		{"nothing measured: by distance, no coordinates last", []Member{self, nowhere, sin, tyo, fra}, []string{"fra", "tyo", "sin", "zzz"}},
		{"a measured RTT beats a farther estimate", []Member{self, sin, at(center("tyo", "tyo", 60*time.Millisecond, 0, 10), 35.68, 139.69), fra},
			[]string{"tyo", "fra", "sin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := RankCenters(tc.members, "live/x", nil, nil, "")
			if !slices.Equal(names(got), tc.want) {
				t.Errorf("ranked %v, want %v", names(got), tc.want)
			}
		})
	}
}
