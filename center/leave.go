package center

// A center that leaves the cluster keeps serving while the edges move
// their uplinks elsewhere and other centers move their pulls away
// (make-before-break); AwaitLeave is that wait.

import (
	"time"

	"github.com/relaymesh/relaymesh/media/srt"
)

const (
	// PlayWait is how long a center's players wait for a stream that is
	// not live here while it is pulled from another center.
	PlayWait = 5 * time.Second
	// LeaveMoveWait bounds the wait of a leaving center for edges to move
	// their uplinks, and other centers their pulls, away from it.
	LeaveMoveWait = 5 * time.Second
	// LeaveSettle is the least time a leaving center keeps its edges'
	// uplinks while no other center reads from it, for their
	// make-before-break moves to run elsewhere first.
	LeaveSettle = 2 * time.Second
)

// Links counts the backbone listener's uplinks (edges publishing here)
// and the pulls other centers read from it; 0, 0 without a listener.
func (c *Center) Links() (uplinks, pulls int) {
	if c.srt == nil {
		return 0, 0
	}
	return linksOf(c.srt.Stats())
}

func linksOf(stats []srt.ConnStats) (uplinks, pulls int) {
	for _, st := range stats {
		if st.Role == srt.ActionPublish {
			uplinks++
		} else {
			pulls++
		}
	}
	return uplinks, pulls
}

// AwaitLeave waits, once the node announced its leave, until no other
// center pulls from here and either no uplink is left or they had settle
// to move (edges start their new uplinks elsewhere at once and keep the
// old ones here running; other centers' pulls follow the directory to the
// new hosts, and this center lets an old uplink go when the directory
// names the new host). It waits at most wait, on the listener's changes,
// and returns the pulls still open then.
func (c *Center) AwaitLeave(wait, settle time.Duration) (pulls int) {
	bb := c.srt
	if bb == nil {
		return 0
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	settleT := time.NewTimer(settle)
	defer settleT.Stop()
	settled := false
	for {
		changed := bb.Changed()
		up, rd := c.Links()
		if rd == 0 && (up == 0 || settled) {
			return 0
		}
		select {
		case <-changed:
		case <-settleT.C:
			settled = true
		case <-deadline.C:
			_, rd = c.Links()
			return rd
		}
	}
}
