package edge

import (
	"log/slog"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
)

func centerAt(name, site string, rtt time.Duration) gossip.Member {
	m := gossip.Member{Name: name, State: gossip.StateAlive, RTT: rtt, RTTKnown: rtt > 0}
	m.Meta = gossip.NodeMeta{Name: name, Role: gossip.RoleCenter, Site: site, Capacity: gossip.Capacity{MaxStreams: 10}}
	m.Meta.Addrs.Backbone = name + ":9710"
	return m
}

// TestBetterCenter: another center is clearly better only by both the
// margin and the ratio, with both RTTs measured, within the route's
// preference; a center the route prefers is better whatever its RTT.
func TestBetterCenter(t *testing.T) {
	ms := time.Millisecond
	r := Replacement{}.fill() // 20 ms and 0.7
	routes := []gossip.Route{{Pattern: "pref/*", Sites: []string{"tyo", "sin"}}}
	tests := []struct {
		name    string
		members []gossip.Member
		stream  string
		exclude []string
		want    string // "" = stay
	}{
		{"far center, near one measured", []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 4*ms)}, "live/x", nil, "sin"},
		{"better by the ratio, not the margin", []gossip.Member{centerAt("tyo", "tyo", 20*ms), centerAt("sin", "sin", 4*ms)}, "live/x", nil, ""},
		{"better by the margin, not the ratio", []gossip.Member{centerAt("tyo", "tyo", 200*ms), centerAt("sin", "sin", 160*ms)}, "live/x", nil, ""},
		{"the other's RTT not measured", []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 0)}, "live/x", nil, ""},
		{"the current one's RTT not measured", []gossip.Member{centerAt("tyo", "tyo", 0), centerAt("sin", "sin", 4*ms)}, "live/x", nil, ""},
		{"the better one failed the stream lately", []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 4*ms)}, "live/x", []string{"sin"}, ""},
		{"the route prefers the current site", []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 4*ms)}, "pref/x", nil, ""},
		{"the current center is gone", []gossip.Member{centerAt("sin", "sin", 4*ms)}, "live/x", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			best, _, ok := betterCenter(tc.members, tc.stream, routes, tc.exclude, "tyo", r)
			got := ""
			if ok {
				got = best.Name
			}
			if got != tc.want {
				t.Errorf("better center than tyo: %q, want %q", got, tc.want)
			}
		})
	}
	// the route prefers tyo: a stream on sin goes there although sin is nearer
	ms2 := []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 4*ms)}
	if best, _, ok := betterCenter(ms2, "pref/x", routes, nil, "sin", r); !ok || best.Name != "tyo" {
		t.Errorf("a stream the route prefers on tyo, on sin: better %q (%v), want tyo", best.Name, ok)
	}
}

// membersCluster is fakeCluster with members of its own (RTTs).
type membersCluster struct {
	fakeCluster
	members []gossip.Member
}

func (m *membersCluster) Members() []gossip.Member { return m.members }

// TestReplacementHysteresis: a move starts only after the better center
// stayed better on every check for Hold, not while the uplink's link is
// not running, and not again within the cooldown of the last move.
func TestReplacementHysteresis(t *testing.T) {
	ms := time.Millisecond
	cl := &membersCluster{members: []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 4*ms)}}
	hub := media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
	u, err := New(Config{Replace: DefaultReplacement()}, hub, cl, nil) // hold 3 s, cooldown 30 s
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	runs := false
	u.status = func(*uplink) (link.Status, bool) {
		if runs {
			return link.Status{State: link.StateRunning}, true
		}
		return link.Status{}, true
	}
	l := &uplink{key: "live/x", center: "tyo", exclude: map[string]time.Time{}}
	u.links[l.key] = l
	moving := func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		if l.next != nil {
			l.next.cancel()
			l.next = nil
			return true
		}
		return false
	}
	t0 := time.Now()

	// the link is not running (connecting): no check counts
	u.checkPlacement(t0)
	if moving() || l.better.center != "" {
		t.Fatalf("a link that does not run was considered for re-placement: %+v", l.better)
	}
	runs = true

	u.checkPlacement(t0)
	u.checkPlacement(t0.Add(2 * time.Second))
	if moving() {
		t.Fatal("moved before the better center stayed better for Hold")
	}
	// one check where it is not better any more restarts the hold
	cl.members[1].RTT = 60 * ms
	u.checkPlacement(t0.Add(2500 * time.Millisecond))
	cl.members[1].RTT = 4 * ms
	u.checkPlacement(t0.Add(3 * time.Second))
	u.checkPlacement(t0.Add(5 * time.Second))
	if moving() {
		t.Fatal("moved although the better center was not better on every check for Hold")
	}
	u.checkPlacement(t0.Add(6 * time.Second))
	if !moving() {
		t.Fatal("no move after the better center stayed better for Hold")
	}

	// a move lately: no re-placement within the cooldown
	l.movedAt = t0.Add(6 * time.Second)
	for _, d := range []time.Duration{7, 20, 35} {
		u.checkPlacement(t0.Add(d * time.Second))
	}
	if moving() {
		t.Fatal("re-placed within the cooldown of the last move")
	}
	u.checkPlacement(t0.Add(40 * time.Second))
	u.checkPlacement(t0.Add(44 * time.Second))
	if !moving() {
		t.Fatal("no re-placement after the cooldown")
	}
}

// TestUplinkHealthDrops: a running link that drops 10 packets or more
// within 2 s moves make-before-break to the next center, which excludes
// the unhealthy one; fewer drops leave it alone.
func TestUplinkHealthDrops(t *testing.T) {
	tests := []struct {
		name  string
		drops []uint64 // the link's drop counter at each check, 1 s apart
		lost  []uint64 // packets reported lost (100 sent per second)
		moved bool
	}{
		{"no drops", []uint64{0, 0, 0, 0}, nil, false},
		{"a few drops", []uint64{0, 3, 6, 9, 12}, nil, false},
		{"12 drops in 2 s", []uint64{0, 5, 12}, nil, true},
		{"a burst, then quiet", []uint64{0, 20, 20, 20}, nil, true},
		{"2% loss: ARQ copes", []uint64{0, 0, 0, 0}, []uint64{0, 2, 4, 6}, false},
		{"30% loss", []uint64{0, 0, 0}, []uint64{0, 30, 60}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := &membersCluster{fakeCluster: fakeCluster{alive: []string{"tyo", "sin"}}}
			cl.members = cl.fakeCluster.Members()
			hub := media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
			u, err := New(Config{}, hub, cl, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			var drops, lost, sent uint64
			u.status = func(*uplink) (link.Status, bool) {
				st := link.Status{State: link.StateRunning}
				st.Total.Drops, st.Total.PacketsLost, st.Total.PacketsSent = drops, lost, sent
				return st, true
			}
			l := &uplink{key: "live/x", center: "tyo", exclude: map[string]time.Time{}}
			u.links[l.key] = l
			t0 := time.Now()
			for i, d := range tc.drops {
				drops, sent = d, uint64(i)*100
				if tc.lost != nil {
					lost = tc.lost[i]
				}
				u.checkPlacement(t0.Add(time.Duration(i) * time.Second))
			}
			u.mu.Lock()
			h := l.next
			u.mu.Unlock()
			if (h != nil) != tc.moved {
				t.Fatalf("moved = %v, want %v", h != nil, tc.moved)
			}
			if h == nil {
				return
			}
			h.cancel()
			if h.center != "sin" {
				t.Errorf("moved to %s, want sin", h.center)
			}
			if _, ok := l.exclude["tyo"]; !ok {
				t.Error("the unhealthy center is not excluded")
			}
		})
	}
}

// TestReplacementFill: the zero Replacement is the default; a set one
// keeps its zero margin, hold and cooldown ([cluster.replace] writes
// them), and a ratio no center reaches forbids the move.
func TestReplacementFill(t *testing.T) {
	if got := (Replacement{}).fill(); got != DefaultReplacement() {
		t.Errorf("zero Replacement filled: %+v, want %+v", got, DefaultReplacement())
	}
	if got := (Replacement{Off: true}).fill(); !got.Off || got.Hold != DefaultReplacement().Hold {
		t.Errorf("Off alone filled: %+v, want off with the default tuning", got)
	}
	r := Replacement{Ratio: 0.05, Cooldown: time.Minute}.fill()
	if r.Margin != 0 || r.Hold != 0 || r.Cooldown != time.Minute || r.Every != time.Second {
		t.Errorf("set Replacement filled: %+v, want margin and hold 0, cooldown 1m, every 1s", r)
	}
	ms := time.Millisecond
	members := []gossip.Member{centerAt("tyo", "tyo", 74*ms), centerAt("sin", "sin", 4*ms)}
	if best, _, ok := betterCenter(members, "live/x", nil, nil, "tyo", r); ok {
		t.Errorf("ratio 0.05: %s (4 ms) counted as clearly better than tyo (74 ms)", best.Name)
	}
	r.Ratio = 0.1
	if best, _, ok := betterCenter(members, "live/x", nil, nil, "tyo", r); !ok || best.Name != "sin" {
		t.Errorf("ratio 0.1, margin 0: better %q (%v), want sin", best.Name, ok)
	}
}
