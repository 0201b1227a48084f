package gossip

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"time"
)

// ErrNoCenter is returned when no healthy center with spare capacity is left.
var ErrNoCenter = errors.New("no healthy center with spare capacity")

// Route says which sites a stream should be sent to, in order of preference.
type Route struct {
	Pattern string   // path.Match glob over "app/name", e.g. "live/*" ("*" does not cross "/")
	Sites   []string // preferred sites, best first
	Strict  bool     // only the listed sites; otherwise other sites follow as a last resort
}

// matchRoute returns the first rule matching stream.
func matchRoute(stream string, rules []Route) (Route, bool) {
	for _, r := range rules {
		if ok, err := path.Match(r.Pattern, stream); err == nil && ok {
			return r, true
		}
	}
	return Route{}, false
}

// ChooseCenter returns the best center for stream: see CenterCandidates.
func (c *Cluster) ChooseCenter(stream string, rules []Route, exclude []string) (Member, error) {
	cands, why := c.centerCandidates(stream, rules, exclude)
	if len(cands) == 0 {
		return Member{}, fmt.Errorf("choose center for %s: %w (%s)", stream, ErrNoCenter, why)
	}
	return cands[0], nil
}

// CenterCandidates returns the centers that may take stream, best first,
// for failover. Only alive centers (and standalone nodes) outside exclude
// with spare capacity qualify; the center already hosting the stream per
// the directory qualifies without spare capacity and comes first. Then the
// first rule matching the stream orders the sites (unlisted sites follow
// unless the rule is strict); within a site, and with no rule, the lowest
// RTT wins, then the lighter load, then the name.
func (c *Cluster) CenterCandidates(stream string, rules []Route, exclude []string) []Member {
	cands, _ := c.centerCandidates(stream, rules, exclude)
	return cands
}

func (c *Cluster) centerCandidates(stream string, rules []Route, exclude []string) ([]Member, string) {
	host := ""
	if e, ok := c.Lookup(stream); ok {
		host = e.Node
	}
	return RankCenters(c.Members(), stream, rules, exclude, host)
}

// SiteRank is how the first route rule matching stream ranks site: its
// index in the rule's sites, len(sites) for a site it does not list, 0
// for every site when no rule matches. Lower is preferred.
func SiteRank(stream string, rules []Route, site string) int {
	route, ok := matchRoute(stream, rules)
	if !ok {
		return 0
	}
	if i := slices.Index(route.Sites, site); i >= 0 {
		return i
	}
	return len(route.Sites)
}

// EstimateRTT is the round trip over km of fiber: 2 x 1.5 x km at
// 200 km/ms (fra-sin, 10 300 km: 155 ms; measured 160 ms).
func EstimateRTT(km float64) time.Duration {
	return time.Duration(km * 0.015 * float64(time.Millisecond))
}

// RankCenters is the pure ranking behind CenterCandidates. host is the node
// that already hosts the stream, or "". The string explains an empty result.
func RankCenters(members []Member, stream string, rules []Route, exclude []string, host string) ([]Member, string) {
	route, routed := matchRoute(stream, rules)
	var centers, unhealthy, excluded, full, offsite int
	var out []Member
	for _, m := range members {
		if !m.Meta.Role.IsCenter() || m.MetaErr != nil {
			continue
		}
		centers++
		switch {
		case !m.Healthy():
			unhealthy++
		case slices.Contains(exclude, m.Name):
			excluded++
		case !m.Meta.HasSpare() && m.Name != host:
			full++
		case routed && route.Strict && !slices.Contains(route.Sites, m.Meta.Site):
			offsite++
		default:
			out = append(out, m)
		}
	}
	siteRank := func(m Member) int { return SiteRank(stream, rules, m.Meta.Site) }
	// Until a center's RTT is measured (a node that just started), its
	// distance from this node stands in for it: great-circle km at the
	// speed of light in fiber, over a route 1.5x the straight line.
	var self NodeMeta
	for _, m := range members {
		if m.Local {
			self = m.Meta
		}
	}
	rtt := func(m Member) (time.Duration, bool) {
		if m.RTTKnown {
			return m.RTT, true
		}
		if self.HasLocation() && m.Meta.HasLocation() {
			return EstimateRTT(Haversine(self.Lat, self.Lon, m.Meta.Lat, m.Meta.Lon)), true
		}
		return 0, false
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Name == host) != (b.Name == host) {
			return a.Name == host
		}
		if ra, rb := siteRank(a), siteRank(b); ra != rb {
			return ra < rb
		}
		ta, ka := rtt(a)
		tb, kb := rtt(b)
		if ka != kb {
			return ka
		}
		if ka && ta != tb {
			return ta < tb
		}
		if ua, ub := a.Meta.Utilization(), b.Meta.Utilization(); ua != ub {
			return ua < ub
		}
		return a.Name < b.Name
	})
	why := fmt.Sprintf("%d centers known: %d unhealthy, %d excluded, %d full", centers, unhealthy, excluded, full)
	if offsite > 0 {
		why += fmt.Sprintf(", %d outside the sites of route %q", offsite, route.Pattern)
	}
	return out, why
}
