package edge

// Health-based failover of an uplink: a link that is connected but loses
// media (SRT drops packets it could not deliver within the latency), or
// whose path loses so much that its ARQ is about to (a quarter of the
// packets reported lost), moves make-before-break to the next center, as
// a dead one would, and the move names the rule that fired. An uplink
// moves so at most once per Replace.Cooldown: a loss at the edge's own
// access would follow it to every center.

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
	RuleDrops = "drops"
	dropLimit = 10
	// RuleLoss: at least lossShare of the packets sent within
	// dropWindow were reported lost (of lossMinPackets or more).
	RuleLoss       = "loss"
	lossShare      = 0.25
	lossMinPackets = 50
	dropWindow     = 2 * time.Second
)

// dropSample is the link's counters at a check.
type dropSample struct {
	at                time.Time
	drops, lost, sent uint64
}

// checkHealthLocked judges l's running link at now; when it breaks a
// rule, it starts the move to the next center and reports true.
func (u *Uplinks) checkHealthLocked(l *uplink, now time.Time) bool {
	st, _ := u.status(l)
	cur := dropSample{now, st.Total.Drops, st.Total.PacketsLost, st.Total.PacketsSent}
	l.drops = append(l.drops, cur)
	i := 0
	for i < len(l.drops)-1 && now.Sub(l.drops[i+1].at) >= dropWindow {
		i++
	}
	l.drops = l.drops[i:]
	first := l.drops[0]
	if now.Sub(first.at) < dropWindow-u.cfg.Replace.Every/2 ||
		(!l.movedAt.IsZero() && now.Sub(l.movedAt) < u.cfg.Replace.Cooldown) {
		return false
	}
	span := now.Sub(first.at).Round(100 * time.Millisecond)
	dropped, lost, sent := cur.drops-first.drops, cur.lost-first.lost, cur.sent-first.sent
	var rule, why string
	switch {
	case dropped >= dropLimit:
		rule, why = RuleDrops, fmt.Sprintf("health: %s (%d packets dropped too late in %s)", RuleDrops, dropped, span)
	case sent >= lossMinPackets && float64(lost) >= lossShare*float64(sent):
		rule, why = RuleLoss, fmt.Sprintf("health: %s (%d of %d packets reported lost in %s)", RuleLoss, lost, sent, span)
	default:
		return false
	}
	l.drops = nil
	l.exclude[l.center] = now
	var ex []string
	for name := range l.exclude {
		ex = append(ex, name)
	}
	cands := u.cl.CenterCandidates(l.key, u.cfg.Routes, ex)
	if len(cands) == 0 {
		u.log.Warn("uplink unhealthy, and no other center to move to", "stream", l.key, "center", l.center, "rule", rule, "reason", why)
		return true
	}
	u.log.Warn("uplink unhealthy: moving to the next center", "stream", l.key, "center", l.center, "to", cands[0].Name, "rule", rule, "reason", why)
	if err := u.startMoveToLocked(l, move{to: cands[0], why: why, health: true}); err != nil && !errors.Is(err, gossip.ErrNoCenter) {
		u.log.Warn("uplink health move did not start", "stream", l.key, "err", err)
	}
	return true
}

// HealthMoves returns how many uplinks moved away from an unhealthy link
// (relaymesh_uplink_health_moves_total).
func (u *Uplinks) HealthMoves() uint64 { return u.healthMoves.Load() }
