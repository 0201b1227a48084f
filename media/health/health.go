// Package health judges whether a connected source delivers what it
// should: a source that sends packets but is unhealthy fails over like a
// dead one. The rules (each names itself when it fires):
//
//   - framerate: the video frame rate over the last Hold fell below
//     FrameRateDrop of the source's reference rate (its rate over the
//     Baseline before, taken while it was healthy); it holds until the
//     rate is back over a whole Hold after the fall;
//   - frozen: packets arrive but their media timestamps advanced less
//     than a quarter of Hold within the last Hold (not at all, or by the
//     1 ms a packet that media.Stream adds to keep a track's timeline
//     increasing when a publisher repeats a timestamp);
//   - continuity: more than MaxCCErrors MPEG-TS continuity errors (lost
//     or reordered TS packets, counted by the source's demuxer and handed
//     in with ContinuityErrors) within the last Hold; off when
//     MaxCCErrors is 0. It is judged before the frame rate, which a
//     damaged input drags down too: the switch names the cause.
//
// A Monitor is fed each packet with its arrival time and asked with Check;
// it keeps no goroutine and is not safe for concurrent use (one owner).
package health

import (
	"fmt"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// Rule names, as Check reports them.
const (
	RuleFrameRate  = "framerate"
	RuleFrozen     = "frozen"
	RuleContinuity = "continuity"
)

// Rules tune a Monitor; zero fields take the defaults.
type Rules struct {
	FrameRateDrop float64       // default 0.5
	Hold          time.Duration // default 2s
	Baseline      time.Duration // default 5s
	// MaxCCErrors is how many TS continuity errors a source may have
	// within Hold (0: the continuity rule is off)
	MaxCCErrors int
}

func (r Rules) fill() Rules {
	if r.FrameRateDrop == 0 {
		r.FrameRateDrop = 0.5
	}
	if r.Hold == 0 {
		r.Hold = 2 * time.Second
	}
	if r.Baseline == 0 {
		r.Baseline = 5 * time.Second
	}
	return r
}

// clockStepBack is how far timestamps may go back (audio behind video)
// before they count as a new clock.
const clockStepBack = 1000 // ms

// silent is how long without any packet makes a source silent, which
// its owner handles as a dead source, not judged here.
const silent = time.Second

// Monitor follows one source.
type Monitor struct {
	r      Rules
	frames []time.Time // arrival times of video frames, oldest first
	start  time.Time   // first packet of the current run
	last   time.Time   // last packet
	// ref is the reference frame rate (frames/s), taken while healthy
	ref float64
	// maxTS is the newest media timestamp; clock is when the current
	// clock started (the first packet, or a step back); ts samples maxTS
	// at most every tsEvery, back to the newest sample at least Hold old
	maxTS  int64
	clock  time.Time
	ts     []tsSample
	sick   string
	fellAt time.Time // the frame rate rule's last start (sick became framerate)
	// cc holds the source's continuity error count as handed in, oldest
	// first, back to the newest sample at least Hold old
	cc []ccSample
}

// tsSample is the newest media timestamp (ms) at a time.
type tsSample struct {
	at time.Time
	ts int64
}

// tsEvery is how often the timestamp is sampled; frozenShare is the
// least share of the wall time the media time must advance by.
const (
	tsEvery     = 100 * time.Millisecond
	frozenShare = 4 // a quarter
)

// ccSample is the source's continuity error total at a time.
type ccSample struct {
	at    time.Time
	total uint64
}

// New returns a Monitor with rules r.
func New(r Rules) *Monitor { return &Monitor{r: r.fill()} }

// Reset forgets the source's history (it delivers again after silence),
// except its continuity error counts: errors of the last Hold count
// across a pause (a damaged input pauses as its frames break).
func (m *Monitor) Reset() { *m = Monitor{r: m.r, cc: m.cc} }

// Packet records p, which arrived at now.
func (m *Monitor) Packet(now time.Time, p *unit.Packet) {
	if m.start.IsZero() {
		m.start, m.clock = now, now
	}
	m.last = now
	if p.Header {
		return
	}
	switch {
	case p.Time > m.maxTS:
		m.maxTS = p.Time
	case p.Time < m.maxTS-clockStepBack:
		// a new clock (an encoder restarted, a playlist's next file):
		// its timestamps advance from here
		m.maxTS, m.clock, m.ts = p.Time, now, m.ts[:0]
	}
	if n := len(m.ts); n == 0 || now.Sub(m.ts[n-1].at) >= tsEvery {
		m.ts = append(m.ts, tsSample{now, m.maxTS})
	}
	if p.Kind == unit.KindVideo {
		m.frames = append(m.frames, now)
	}
}

// ContinuityErrors records the source's continuity error count (a total
// that only grows; a smaller one is a new count, from here) at now.
func (m *Monitor) ContinuityErrors(now time.Time, total uint64) {
	if n := len(m.cc); n > 0 && total < m.cc[n-1].total {
		m.cc = m.cc[:0]
	}
	m.cc = append(m.cc, ccSample{now, total})
	i := 0
	for i < len(m.cc)-1 && !m.cc[i+1].at.After(now.Add(-m.r.Hold)) {
		i++
	}
	m.cc = m.cc[i:]
}

// ccErrors returns the continuity errors within the last Hold and the
// span they were counted over (shorter while the count is young).
func (m *Monitor) ccErrors(now time.Time) (uint64, time.Duration) {
	if len(m.cc) < 2 {
		return 0, 0
	}
	first, last := m.cc[0], m.cc[len(m.cc)-1]
	return last.total - first.total, min(now.Sub(first.at), m.r.Hold)
}

// count returns the video frames that arrived in (from, to].
func (m *Monitor) count(from, to time.Time) int {
	n := 0
	for _, t := range m.frames {
		if t.After(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// Check says which rule the source breaks at now ("" = healthy) and how.
func (m *Monitor) Check(now time.Time) (rule, detail string) {
	r := m.r
	// forget what no window needs any more
	keep := now.Add(-(r.Hold + r.Baseline))
	i := 0
	for i < len(m.frames) && m.frames[i].Before(keep) {
		i++
	}
	m.frames = m.frames[i:]
	if m.start.IsZero() || now.Sub(m.last) >= silent {
		m.sick = "" // silence is not a health matter: the source is gone
		return "", ""
	}
	j := 0
	for j < len(m.ts)-1 && !m.ts[j+1].at.After(now.Add(-r.Hold)) {
		j++
	}
	m.ts = m.ts[j:]
	if len(m.ts) > 0 && now.Sub(m.clock) >= r.Hold {
		if adv := m.maxTS - m.ts[0].ts; adv < r.Hold.Milliseconds()/frozenShare {
			m.sick = RuleFrozen
			return RuleFrozen, fmt.Sprintf("packets arrive but their timestamps advanced %d ms in the last %s", adv, r.Hold)
		}
	}
	if r.MaxCCErrors > 0 {
		if n, span := m.ccErrors(now); n > uint64(r.MaxCCErrors) {
			m.sick = RuleContinuity
			return RuleContinuity, fmt.Sprintf("%d MPEG-TS continuity errors in %s, over its max_cc_errors %d", n, span.Round(100*time.Millisecond), r.MaxCCErrors)
		}
	}
	split := now.Add(-r.Hold)
	if now.Sub(m.start) >= r.Hold+r.Baseline {
		recent := float64(m.count(split, now)) / r.Hold.Seconds()
		if m.sick == "" {
			// the reference follows the source while it is healthy
			m.ref = float64(m.count(split.Add(-r.Baseline), split)) / r.Baseline.Seconds()
		}
		if m.ref > 0 && recent < r.FrameRateDrop*m.ref {
			if m.sick != RuleFrameRate {
				m.fellAt = now
			}
			m.sick = RuleFrameRate
			return RuleFrameRate, fmt.Sprintf("%.1f video frames/s over the last %s, below %.0f%% of its %.1f", recent, r.Hold, r.FrameRateDrop*100, m.ref)
		}
		if m.sick == RuleFrameRate && now.Sub(m.fellAt) < r.Hold {
			// healthy again only once a whole window after the fall is at
			// the rate: frames a stalled publisher sent arrive together,
			// and the window's count crosses the line back and forth
			return RuleFrameRate, fmt.Sprintf("%.1f video frames/s over the last %s, back at %.0f%% of its %.1f only since it fell %s ago", recent, r.Hold, r.FrameRateDrop*100, m.ref, now.Sub(m.fellAt).Round(100*time.Millisecond))
		}
	}
	m.sick = ""
	return "", ""
}
