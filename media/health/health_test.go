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
		{"timestamps start again (a new clock): not frozen", func(m *Monitor, s *[]string) {
			feed(m, t0, 0, 10*time.Second, 25, false, s)
			for now := t0.Add(10 * time.Second); now.Before(t0.Add(16 * time.Second)); now = now.Add(40 * time.Millisecond) {
				m.Packet(now, &unit.Packet{Kind: unit.KindVideo, Time: now.Sub(t0.Add(10 * time.Second)).Milliseconds()})
				if rule, _ := m.Check(now); rule != "" && (*s)[len(*s)-1] != rule {
					*s = append(*s, rule)
				}
			}
		}, []string{""}},
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
