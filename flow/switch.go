package flow

import "time"

// switchPolicy decides which source a flow with a backup forwards
// (0 the primary, 1 the backup). It fails over once the active source
// has been silent for SilenceFailover, or is unusable (cut for its
// bitrate, unhealthy), while the other one delivers (at
// the start, when the active one has not delivered yet, only after
// startGrace), and returns to the primary at the primary's first
// keyframe after it delivered again without a break for returnHold. It
// is pure: the runner tells it what arrived and when, and asks it at
// each tick; it keeps no clock of its own.
type switchPolicy struct {
	n        int // sources: 1 or 2
	active   int
	pending  int          // the source switched to at its next keyframe; -1: none
	last     [2]time.Time // each source's last packet
	since    [2]time.Time // the start of each source's unbroken run of packets
	firstAny time.Time    // the first packet of any source
}

func newSwitchPolicy(sources int) *switchPolicy {
	return &switchPolicy{n: sources, pending: -1}
}

// alive reports whether source i delivers at now: a packet within
// SilenceFailover and not unusable (cut for its bitrate, unhealthy).
func (p *switchPolicy) alive(i int, now time.Time, unusable bool) bool {
	return !unusable && !p.last[i].IsZero() && now.Sub(p.last[i]) < SilenceFailover
}

// received records packets of source i at now. It reports whether they
// start a new unbroken run (the first packets, or after silence).
func (p *switchPolicy) received(i int, now time.Time) (anew bool) {
	if p.firstAny.IsZero() {
		p.firstAny = now
	}
	if p.last[i].IsZero() || now.Sub(p.last[i]) >= SilenceFailover {
		p.since[i] = now
		anew = true
	}
	p.last[i] = now
	return anew
}

// resume starts a new unbroken run of source i at now: it was unusable
// (unhealthy) and is not any more, so a return to it waits returnHold
// from now.
func (p *switchPolicy) resume(i int, now time.Time) { p.since[i] = now }

// keyframe reports whether a video keyframe of source i completes a
// pending return; the policy then makes i active.
func (p *switchPolicy) keyframe(i int) bool {
	if p.pending != i {
		return false
	}
	p.active, p.pending = i, -1
	return true
}

// tick looks at the sources at now; unusable says why source i is not
// used though it may deliver (cut for its bitrate, unhealthy; "" =
// usable), which is the reason of a switch away from it. It returns the
// source to switch to at once and why (ok false: stay; a silent source's
// reason is SwitchSilence); a return to the primary is only made pending
// here and happens at its keyframe.
func (p *switchPolicy) tick(now time.Time, unusable func(i int) string) (to int, reason string, ok bool) {
	if p.n < 2 {
		return 0, "", false
	}
	active, other := p.active, 1-p.active
	why := unusable(active)
	switch {
	case !p.alive(active, now, why != "") && p.alive(other, now, unusable(other) != "") &&
		(!p.last[active].IsZero() || now.Sub(p.firstAny) >= startGrace):
		p.active, p.pending = other, -1
		if why == "" {
			why = SwitchSilence
		}
		return other, why, true
	case active == 1 && p.pending < 0 && p.alive(0, now, unusable(0) != "") && now.Sub(p.since[0]) >= returnHold:
		p.pending = 0 // back to the primary at its next keyframe
	case p.pending == 0 && !p.alive(0, now, unusable(0) != ""):
		p.pending = -1
	}
	return 0, "", false
}
