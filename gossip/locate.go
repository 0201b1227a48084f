package gossip

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
)

// ErrNoEdge is returned when no healthy edge with spare capacity is left.
var ErrNoEdge = errors.New("no healthy edge with spare capacity")

// Location places a client address range on the map.
type Location struct {
	CIDR netip.Prefix
	Site string // optional: edges of this site are preferred
	Lat  float64
	Lon  float64
}

// LocationTable maps client addresses to locations (longest prefix wins).
type LocationTable struct {
	Locations []Location
}

// Lookup returns the most specific location containing addr.
func (t LocationTable) Lookup(addr netip.Addr) (Location, bool) {
	addr = addr.Unmap()
	best, found := Location{}, false
	for _, l := range t.Locations {
		if l.CIDR.Contains(addr) && (!found || l.CIDR.Bits() > best.CIDR.Bits()) {
			best, found = l, true
		}
	}
	return best, found
}

// Locate ranks the edges a client at addr should publish to, best first.
// See RankEdges.
func (c *Cluster) Locate(client netip.Addr, table LocationTable) ([]Member, error) {
	loc, found := table.Lookup(client)
	edges, why := RankEdges(c.Members(), loc, found)
	if len(edges) == 0 {
		return nil, fmt.Errorf("locate %s: %w (%s)", client, ErrNoEdge, why)
	}
	return edges, nil
}

// RankEdges orders the alive edges (and standalone nodes) with spare
// capacity for a client at loc; those marked Unreachable come last. With a location: edges of loc.Site first,
// then by great-circle distance (whole km; edges advertising no
// coordinates last), ties broken by lower utilization, then name. Without
// one (found false), all of them by utilization, then name. The string
// explains an empty result.
func RankEdges(members []Member, loc Location, found bool) ([]Member, string) {
	var edges, unhealthy, full int
	var out []Member
	for _, m := range members {
		if !m.Meta.Role.IsEdge() || m.MetaErr != nil {
			continue
		}
		edges++
		switch {
		case !m.Healthy():
			unhealthy++
		case !m.Meta.HasSpare():
			full++
		default:
			out = append(out, m)
		}
	}
	dist := func(m Member) float64 {
		if !m.Meta.HasLocation() {
			return math.Inf(1)
		}
		return math.Round(Haversine(loc.Lat, loc.Lon, m.Meta.Lat, m.Meta.Lon))
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Unreachable != b.Unreachable {
			return b.Unreachable // the data path could not reach it lately
		}
		if found {
			if loc.Site != "" {
				if sa, sb := a.Meta.Site == loc.Site, b.Meta.Site == loc.Site; sa != sb {
					return sa
				}
			}
			if da, db := dist(a), dist(b); da != db {
				return da < db
			}
		}
		if ua, ub := a.Meta.Utilization(), b.Meta.Utilization(); ua != ub {
			return ua < ub
		}
		return a.Name < b.Name
	})
	return out, fmt.Sprintf("%d edges known: %d unhealthy, %d full", edges, unhealthy, full)
}

// Haversine returns the great-circle distance in km between two points.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const earthRadiusKm = 6371.0
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h)))
}
