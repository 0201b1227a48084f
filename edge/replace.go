package edge

// Re-placement: an uplink placed on a center before the edge measured its
// RTTs (a node that just started ranks centers by distance), or whose
// network changed since, moves to a clearly better center once the
// measurements say so, make-before-break. Hysteresis keeps it from
// flapping: the other center must be better by an absolute margin and by
// a ratio, on every check for Hold, and a stream that moved lately stays.

import (
	"context"
	"fmt"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/link"
)

// Replacement tunes re-placement ([cluster.replace]). The zero
// Replacement takes DefaultReplacement; otherwise Margin, Hold and
// Cooldown are taken as given (0 is a value: no margin, move on the next
// check, no cooldown) and only a zero Ratio or Every takes its default.
type Replacement struct {
	Off bool // never re-place (failover, health moves included, still moves uplinks)
	// Margin and Ratio: another center is clearly better when its RTT is
	// below the current one's by at least Margin and at most Ratio of it.
	Margin time.Duration
	Ratio  float64
	// Hold is how long it must stay clearly better.
	Hold time.Duration
	// Every is how often the uplinks are checked (default 1s).
	Every time.Duration
	// Cooldown is the least time between two moves of one uplink, by
	// re-placement or for its health.
	Cooldown time.Duration
}

// DefaultReplacement is re-placement's default tuning, config's
// [cluster.replace] defaults (20 ms and 0.7x better, for 3 s, at most one
// move per 30 s), checked every second.
func DefaultReplacement() Replacement { return ReplacementOf(config.DefaultReplace()) }

func (r Replacement) fill() Replacement {
	if r.Margin == 0 && r.Ratio == 0 && r.Hold == 0 && r.Every == 0 && r.Cooldown == 0 {
		d := DefaultReplacement()
		d.Off = r.Off
		return d
	}
	d := DefaultReplacement()
	if r.Ratio == 0 {
		r.Ratio = d.Ratio
	}
	if r.Every == 0 {
		r.Every = d.Every
	}
	return r
}

// replaceOverlap bounds how long the old link of a re-placement runs on
// beside the new one. The old center ends it before, as soon as its own
// readers moved (center.followUplinks); this only covers a center that
// does not.
const replaceOverlap = 10 * time.Second

// placement is a better center an uplink has seen, and since when.
type placement struct {
	center string
	since  time.Time
}

// betterCenter returns the center clearly better for stream than cur,
// if one is: a center the route prefers to cur's site, or, among those
// it ranks as cur's site, one whose measured RTT beats cur's by r's
// margin and ratio. members is gossip's view; exclude are centers that
// failed the stream lately.
func betterCenter(members []gossip.Member, stream string, routes []gossip.Route, exclude []string, cur string, r Replacement) (best, now gossip.Member, ok bool) {
	for _, m := range members {
		if m.Name == cur {
			now, ok = m, true
		}
	}
	if !ok {
		return gossip.Member{}, gossip.Member{}, false // failover's business
	}
	cands, _ := gossip.RankCenters(members, stream, routes, append(exclude[:len(exclude):len(exclude)], cur), "")
	curRank := gossip.SiteRank(stream, routes, now.Meta.Site)
	for _, c := range cands {
		rank := gossip.SiteRank(stream, routes, c.Meta.Site)
		if rank < curRank {
			return c, now, true
		}
		if rank > curRank {
			break
		}
		if !c.RTTKnown || !now.RTTKnown {
			continue
		}
		if now.RTT-c.RTT >= r.Margin && float64(c.RTT) <= r.Ratio*float64(now.RTT) {
			return c, now, true
		}
	}
	return gossip.Member{}, now, false
}

// replaceLoop checks the uplinks' placement every r.Every until ctx ends.
func (u *Uplinks) replaceLoop(ctx context.Context) {
	u.mu.Lock()
	r := u.cfg.Replace
	u.mu.Unlock()
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			u.checkPlacement(now)
		}
	}
}

// checkPlacement starts the re-placement of every running uplink whose
// center has been clearly worse than another for Hold.
func (u *Uplinks) checkPlacement(now time.Time) {
	members := u.cl.Members()
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.cfg.Replace
	if u.closed {
		return
	}
	for _, l := range u.links {
		if l.center == "" || l.next != nil || !u.running(l) {
			l.better, l.drops = placement{}, nil
			continue
		}
		if u.checkHealthLocked(l, now) || r.Off {
			continue
		}
		if !l.movedAt.IsZero() && now.Sub(l.movedAt) < r.Cooldown {
			l.better = placement{}
			continue
		}
		var ex []string
		for name, at := range l.exclude {
			if now.Sub(at) <= u.cfg.ExcludeFor {
				ex = append(ex, name)
			}
		}
		best, cur, ok := betterCenter(members, l.key, u.cfg.Routes, ex, l.center, r)
		if !ok {
			l.better = placement{}
			continue
		}
		if l.better.center != best.Name {
			l.better = placement{center: best.Name, since: now}
			u.log.Debug("a better center for the uplink", "stream", l.key, "center", l.center, "rtt", cur.RTT.String(),
				"better", best.Name, "better_rtt", best.RTT.String(), "hold", r.Hold.String())
			continue
		}
		if now.Sub(l.better.since) < r.Hold {
			continue
		}
		l.better = placement{}
		why := fmt.Sprintf("re-placement: %s (rtt %s) is clearly better than %s (rtt %s) for %s",
			best.Name, best.RTT.Round(time.Millisecond), cur.Name, cur.RTT.Round(time.Millisecond), r.Hold)
		mv := move{to: best, why: why, replace: true, fromRTT: cur.RTT, toRTT: best.RTT}
		if err := u.startMoveToLocked(l, mv); err != nil {
			u.log.Warn("uplink re-placement did not start", "stream", l.key, "from", l.center, "to", best.Name, "err", err)
		}
	}
}

// linkStatus is l's current link's status; false when it has none.
func linkStatus(l *uplink) (link.Status, bool) {
	if l.p == nil {
		return link.Status{}, false
	}
	return l.p.Status(), true
}

// running reports whether l's current link runs.
func (u *Uplinks) running(l *uplink) bool {
	st, ok := u.status(l)
	return ok && st.State == link.StateRunning
}

// Replacements returns how many uplinks moved to a better center since
// the edge started (relaymesh_uplink_replacements_total).
func (u *Uplinks) Replacements() uint64 { return u.replaced.Load() }
