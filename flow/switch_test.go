package flow

import (
	"testing"
	"time"
)

// TestSwitchPolicy walks the switch policy on a fake timeline: fail over
// after SilenceFailover (300 ms) of silence, hold a returning primary for
// returnHold (1 s), switch back at its keyframe, and the start grace.
func TestSwitchPolicy(t *testing.T) {
	cases := []struct {
		name    string
		sources int
		steps   []step
	}{
		{"primary silent 290 ms: stays", 2, []step{
			{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(200), do: "b"}, {at: ms(290), do: "tick"},
		}},
		{"primary silent 300 ms: fails over", 2, []step{
			{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(200), do: "b"}, {at: ms(299), do: "tick"},
			{at: ms(300), do: "tick", active: 1, switch_: SwitchSilence},
		}},
		{"both silent: stays", 2, []step{
			{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(400), do: "tick"}, {at: ms(5000), do: "tick"},
		}},
		{"one source: never switches", 1, []step{
			{at: 0, do: "p"}, {at: ms(5000), do: "tick"},
		}},
		{"start: backup first, primary late within the grace", 2, []step{
			{at: 0, do: "b"}, {at: ms(100), do: "b"}, {at: ms(100), do: "tick"}, {at: ms(200), do: "b"}, {at: ms(200), do: "p"},
			{at: ms(300), do: "p"}, {at: ms(300), do: "b"}, {at: ms(1100), do: "tick"}, // the primary went silent: but the backup too
		}},
		{"start: primary never comes, fail over after the grace", 2, cat(
			every("b", 0, ms(900), 0),
			[]step{{at: ms(1000), do: "b", active: 0}, {at: ms(1000), do: "tick", active: 1, switch_: SwitchSilence}},
		)},
		{"return after 1 s of primary, at its keyframe", 2, cat(
			[]step{{at: 0, do: "p"}, {at: 0, do: "b"}},
			every("b", ms(100), ms(300), 0)[:5], // the tick at 300 ms fails over
			[]step{{at: ms(300), do: "tick", active: 1, switch_: SwitchSilence}},
			every("b", ms(400), ms(900), 1),
			// the primary is back at 1 s; the backup keeps going
			[]step{{at: ms(1000), do: "p", active: 1}, {at: ms(1000), do: "b", active: 1}},
			mix(ms(1100), ms(1900), 1),
			[]step{{at: ms(1990), do: "P", active: 1}, {at: ms(1990), do: "tick", active: 1}}, // 990 ms of primary: not yet
			[]step{{at: ms(2000), do: "p", active: 1}, {at: ms(2000), do: "b", active: 1}, {at: ms(2000), do: "tick", active: 1}},
			[]step{{at: ms(2050), do: "p", active: 1}}, // not a keyframe: still the backup
			[]step{{at: ms(2100), do: "P", active: 0, switch_: SwitchPrimaryBack}},
		)},
		{"a flapping primary restarts its hold", 2, cat(
			[]step{{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(300), do: "b"}, {at: ms(300), do: "tick", active: 1, switch_: SwitchSilence}},
			mix(ms(400), ms(1000), 1),
			// a gap of 300 ms in the primary: its run starts again at 1.3 s
			[]step{{at: ms(1100), do: "b", active: 1}, {at: ms(1200), do: "b", active: 1}, {at: ms(1300), do: "p", active: 1}},
			mix(ms(1400), ms(2200), 1),
			[]step{{at: ms(2250), do: "P", active: 1}}, // 950 ms since 1.3 s
			mix(ms(2300), ms(2300), 1),
			[]step{{at: ms(2350), do: "P", active: 0, switch_: SwitchPrimaryBack}},
		)},
		{"a pending return is dropped when the primary dies", 2, cat(
			[]step{{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(300), do: "b"}, {at: ms(300), do: "tick", active: 1, switch_: SwitchSilence}},
			mix(ms(400), ms(1500), 1), // pending from 1.4 s
			every("b", ms(1600), ms(1900), 1),
			[]step{{at: ms(2000), do: "P", active: 1}}, // it is back, but its hold starts again
		)},
		{"a primary cut for its bitrate counts as silent", 2, []step{
			{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(100), do: "cutP"}, {at: ms(100), do: "p"}, {at: ms(100), do: "b"},
			{at: ms(100), do: "tick", active: 1, switch_: SwitchSilence},
		}},
		{"an unhealthy primary fails over with its rule, returns 1 s after it is healthy again", 2, cat(
			[]step{{at: 0, do: "p"}, {at: 0, do: "b"}, {at: ms(100), do: "sickP"}, {at: ms(100), do: "p"}, {at: ms(100), do: "b"},
				{at: ms(100), do: "tick", active: 1, switch_: SwitchHealth + "framerate"}},
			mix(ms(200), ms(1500), 1), // delivering all along, but unhealthy: no return
			[]step{{at: ms(1550), do: "wellP", active: 1}},
			mix(ms(1600), ms(2500), 1),
			[]step{{at: ms(2520), do: "P", active: 1}}, // 970 ms since it is healthy again
			mix(ms(2600), ms(2600), 1),
			[]step{{at: ms(2650), do: "P", active: 0, switch_: SwitchPrimaryBack}},
		)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Date(2026, 5, 1, 18, 0, 0, 0, time.UTC)
			p := newSwitchPolicy(c.sources)
			var why [2]string // what makes each source unusable
			for i, s := range c.steps {
				now := t0.Add(s.at)
				var reason string
				switch s.do {
				case "p", "b", "P", "B":
					src := 0
					if s.do == "b" || s.do == "B" {
						src = 1
					}
					p.received(src, now)
					if (s.do == "P" || s.do == "B") && p.keyframe(src) {
						reason = SwitchPrimaryBack
					}
				case "cutP":
					why[0] = SwitchSilence // as the runner says of a cut source
				case "sickP":
					why[0] = SwitchHealth + "framerate"
				case "wellP":
					why[0] = ""
					p.resume(0, now)
				case "tick":
					if _, r, ok := p.tick(now, func(i int) string { return why[i] }); ok {
						reason = r
					}
				}
				if reason != s.switch_ || p.active != s.active {
					t.Fatalf("step %d (%s at %s): switch %q active %d, want switch %q active %d", i, s.do, s.at, reason, p.active, s.switch_, s.active)
				}
			}
		})
	}
}

// step is one event on a switch policy's timeline and what must hold
// after it.
type step struct {
	at      time.Duration // since the start
	do      string        // "p" / "b": packets of the primary / backup ("P": with a keyframe); "tick"; "cutP": the primary is cut; "sickP" / "wellP": it is unhealthy / healthy again
	active  int           // the active source after the step
	switch_ string        // the reason of the switch the step makes ("": none)
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// every is src every 100 ms from..to, each followed by a tick, with
// active staying active.
func every(src string, from, to time.Duration, active int) []step {
	var out []step
	for d := from; d <= to; d += 100 * time.Millisecond {
		out = append(out, step{at: d, do: src, active: active}, step{at: d, do: "tick", active: active})
	}
	return out
}

// mix is every of both sources (no keyframes).
func mix(from, to time.Duration, active int) []step {
	var out []step
	for d := from; d <= to; d += 100 * time.Millisecond {
		out = append(out, step{at: d, do: "p", active: active}, step{at: d, do: "b", active: active}, step{at: d, do: "tick", active: active})
	}
	return out
}

func cat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
