package health

import (
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// feed sends fps video frames per second from t0+from to t0+to, with
// media timestamps that advance (or stay, frozen) and checks every 100 ms;
// it returns the rules seen, in order, without repeats.
func feed(m *Monitor, t0 time.Time, from, to time.Duration, fps int, frozen bool, seen *[]string) {
	step := time.Second / time.Duration(fps)
	next := t0.Add(from)
	check := t0.Add(from)
	for now := t0.Add(from); now.Before(t0.Add(to)); now = now.Add(10 * time.Millisecond) {
		if !now.Before(next) {
			ts := now.Sub(t0).Milliseconds()
			if frozen {
				ts = 1
			}
			m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: ts})
			next = next.Add(step)
		}
		if !now.Before(check) {
			rule, _ := m.Check(now)
			if len(*seen) == 0 || (*seen)[len(*seen)-1] != rule {
				*seen = append(*seen, rule)
			}
			check = check.Add(100 * time.Millisecond)
		}
	}
}

func TestMonitor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name  string
		steps func(m *Monitor, seen *[]string)
		want  []string
	}{
		{"steady 25 fps", func(m *Monitor, s *[]string) { feed(m, t0, 0, 20*time.Second, 25, false, s) }, []string{""}},
		{"25 then 5 fps, then 25 again", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			feed(m, t0, 10*time.Second, 25*time.Second, 5, false, s)
			feed(m, t0, 25*time.Second, 30*time.Second, 25, false, s)
		}, []string{"", RuleFrameRate, ""}},
		{"25 then 15 fps: not half", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			feed(m, t0, 10*time.Second, 20*time.Second, 15, false, s)
		}, []string{""}},
		{"a collapse shorter than Hold", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			feed(m, t0, 10*time.Second, 10500*time.Millisecond, 2, false, s)
			feed(m, t0, 10500*time.Millisecond, 15*time.Second, 25, false, s)
		}, []string{""}},
		{"timestamps frozen", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			feed(m, t0, 10*time.Second, 15*time.Second, 25, true, s)
		}, []string{"", RuleFrozen}},
		// the hub makes a repeated timestamp 1 ms more than the track's
		// last: a frozen source's timestamps crawl, 25 ms a second
		{"timestamps crawl by 1 ms a frame", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			for i, now := int64(0), t0.Add(10*time.Second); now.Before(t0.Add(15 * time.Second)); i, now = i+1, now.Add(40*time.Millisecond) {
				m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: 10000 + i})
				if rule, _ := m.Check(now); (*s)[len(*s)-1] != rule {
					*s = append(*s, rule)
				}
			}
		}, []string{"", RuleFrozen}},
		{"timestamps at half speed: slow, not frozen", func(m *Monitor, s *[]string) {
			for now := t0; now.Before(t0.Add(10 * time.Second)); now = now.Add(40 * time.Millisecond) {
				m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: now.Sub(t0).Milliseconds() / 2})
				if rule, _ := m.Check(now); len(*s) == 0 || (*s)[len(*s)-1] != rule {
					*s = append(*s, rule)
				}
			}
		}, []string{""}},
		{"timestamps start again (a new clock): not frozen", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			for now := t0.Add(10 * time.Second); now.Before(t0.Add(16 * time.Second)); now = now.Add(40 * time.Millisecond) {
				m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: now.Sub(t0.Add(10 * time.Second)).Milliseconds()})
				if rule, _ := m.Check(now); rule != "" && (*s)[len(*s)-1] != rule {
					*s = append(*s, rule)
				}
			}
		}, []string{""}},
		// just under the threshold, then frames that a stalled publisher
		// sent arrive together: the window's count is over it for a
		// moment, but a source that broke the rule is healthy again only
		// after a whole Hold at the rate (the verdict flapped, and the
		// status said healthy 25 ms after the switch)
		{"just under half, then a burst of frames", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			feed(m, t0, 10*time.Second, 12500*time.Millisecond, 12, false, s)
			for i := range 4 {
				now := t0.Add(12500*time.Millisecond + time.Duration(i)*time.Millisecond)
				m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: now.Sub(t0).Milliseconds()})
			}
			if rule, _ := m.Check(t0.Add(12505 * time.Millisecond)); (*s)[len(*s)-1] != rule {
				*s = append(*s, rule)
			}
			feed(m, t0, 12600*time.Millisecond, 20*time.Second, 5, false, s)
		}, []string{"", RuleFrameRate}},
		{"starts slow: no reference yet", func(m *Monitor, s *[]string) { feed(m, t0, 0, 6*time.Second, 5, false, s) }, []string{""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen []string
			tc.steps(New(Rules{}), &seen)
			if len(seen) != len(tc.want) {
				t.Fatalf("rules seen %q, want %q", seen, tc.want)
			}
			for i := range seen {
				if seen[i] != tc.want[i] {
					t.Fatalf("rules seen %q, want %q", seen, tc.want)
				}
			}
		})
	}
}

// TestMonitorContinuity: a source at a steady 25 fps whose continuity
// error total (handed in every 25 ms, as a flow does) grows more than
// MaxCCErrors within Hold breaks the continuity rule while it does, and
// that rule is named before the frame rate when both break; MaxCCErrors 0
// is off, and a total that starts again lower is a new count.
func TestMonitorContinuity(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(e time.Duration) float64 { return e.Seconds() }
	for _, c := range []struct {
		name  string
		max   int
		fps   func(e time.Duration) int
		total func(e time.Duration) uint64
		want  []string
	}{
		{"no errors", 10, nil, func(time.Duration) uint64 { return 0 }, []string{""}},
		{"4 a second: 8 in 2 s, not over 10", 10, nil, func(e time.Duration) uint64 { return uint64(4 * sec(e)) }, []string{""}},
		{"a burst of 30 at 5 s, then none", 10, nil, func(e time.Duration) uint64 {
			if e < 5*time.Second {
				return 0
			}
			return 30
		}, []string{"", RuleContinuity, ""}},
		{"errors and a frame rate collapse from 8 s: continuity is named", 10,
			func(e time.Duration) int {
				if e < 8*time.Second {
					return 25
				}
				return 5
			},
			func(e time.Duration) uint64 { return uint64(20 * max(0, sec(e)-8)) }, []string{"", RuleContinuity}},
		{"off (0)", 0, nil, func(e time.Duration) uint64 { return uint64(100 * sec(e)) }, []string{""}},
		{"a total that starts again lower", 10, nil, func(e time.Duration) uint64 {
			if e < 5*time.Second {
				return 500
			}
			return 3
		}, []string{""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New(Rules{MaxCCErrors: c.max})
			var seen []string
			next := t0
			for e := time.Duration(0); e < 14*time.Second; e += 5 * time.Millisecond {
				now := t0.Add(e)
				if !now.Before(next) {
					m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: e.Milliseconds()})
					fps := 25
					if c.fps != nil {
						fps = c.fps(e)
					}
					next = next.Add(time.Second / time.Duration(fps))
				}
				if e%(25*time.Millisecond) == 0 {
					m.ContinuityErrors(now, c.total(e))
				}
				if e%(100*time.Millisecond) == 0 {
					rule, detail := m.Check(now)
					if len(seen) == 0 || seen[len(seen)-1] != rule {
						seen = append(seen, rule)
						t.Logf("%s: %q %s", e, rule, detail)
					}
				}
			}
			if len(seen) != len(c.want) {
				t.Fatalf("rules seen %q, want %q", seen, c.want)
			}
			for i := range seen {
				if seen[i] != c.want[i] {
					t.Fatalf("rules seen %q, want %q", seen, c.want)
				}
			}
		})
	}
	// errors before a pause count after it: Reset keeps them
	m := New(Rules{MaxCCErrors: 5})
	for e := time.Duration(0); e <= time.Second; e += 40 * time.Millisecond {
		m.Packet(t0.Add(e), &unit.Packet{Kind: unit.KindVideo, Time: e.Milliseconds()})
		m.ContinuityErrors(t0.Add(e), uint64(e/(40*time.Millisecond)))
	}
	m.Reset() // the source paused and delivers again
	now := t0.Add(1500 * time.Millisecond)
	m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: 1500})
	m.ContinuityErrors(now, 30)
	if rule, detail := m.Check(now); rule != RuleContinuity {
		t.Errorf("30 errors in 1.5 s with a pause, max 5: rule %q (%s), want continuity", rule, detail)
	}
}
