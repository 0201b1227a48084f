package edge

// Health-based failover of an uplink: a link that is connected but loses
// media (SRT drops packets it could not deliver within the latency: the
// path is too lossy for its ARQ) moves make-before-break to the next
// center, as a dead one would, and the move names the rule that fired.

import (
	"errors"
	"fmt"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
)

// Health rule of an uplink.
const (
	// RuleDrops: the link dropped at least dropLimit packets within
	// dropWindow.
	RuleDrops  = "drops"
	dropLimit  = 10
	dropWindow = 2 * time.Second
)

// dropSample is the link's drop counter at a check.
type dropSample struct {
	at    time.Time
	drops uint64
}

// checkHealthLocked judges l's running link at now; when it breaks a
// rule, it starts the move to the next center and reports true.
func (u *Uplinks) checkHealthLocked(l *uplink, now time.Time) bool {
	st, _ := u.status(l)
	d := st.Total.Drops
	l.drops = append(l.drops, dropSample{now, d})
	i := 0
	for i < len(l.drops)-1 && now.Sub(l.drops[i+1].at) >= dropWindow {
		i++
	}
	l.drops = l.drops[i:]
	first := l.drops[0]
	if now.Sub(first.at) < dropWindow-u.cfg.Replace.Every/2 || d < first.drops+dropLimit {
		return false
	}
	why := fmt.Sprintf("health: %s (%d packets dropped too late in %s)", RuleDrops, d-first.drops, now.Sub(first.at).Round(100*time.Millisecond))
	l.drops = nil
	l.exclude[l.center] = now
	var ex []string
	for name := range l.exclude {
		ex = append(ex, name)
	}
	cands := u.cl.CenterCandidates(l.key, u.cfg.Routes, ex)
	if len(cands) == 0 {
		u.log.Warn("uplink unhealthy, and no other center to move to", "stream", l.key, "center", l.center, "rule", RuleDrops, "reason", why)
		return true
	}
	u.log.Warn("uplink unhealthy: moving to the next center", "stream", l.key, "center", l.center, "to", cands[0].Name, "rule", RuleDrops, "reason", why)
	if err := u.startMoveToLocked(l, move{to: cands[0], why: why, health: true}); err != nil && !errors.Is(err, gossip.ErrNoCenter) {
		u.log.Warn("uplink health move did not start", "stream", l.key, "err", err)
	}
	return true
}

// HealthMoves returns how many uplinks moved away from an unhealthy link
// (relaymesh_uplink_health_moves_total).
func (u *Uplinks) HealthMoves() uint64 { return u.healthMoves.Load() }
