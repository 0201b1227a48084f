package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
)

// fakeCluster offers the alive centers in RTT order, minus the excluded.
type fakeCluster struct{ alive []string }

func (f *fakeCluster) Name() string { return "edge-1" }

func (f *fakeCluster) RTT(string) (time.Duration, bool) { return 150 * time.Millisecond, true }

func (f *fakeCluster) CenterCandidates(_ string, _ []gossip.Route, exclude []string) []gossip.Member {
	var out []gossip.Member
	for _, n := range f.alive {
		if !slices.Contains(exclude, n) {
			m := gossip.Member{Name: n}
			m.Meta.Addrs.Backbone = n + ":9710"
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeCluster) Members() []gossip.Member { return f.CenterCandidates("", nil, nil) }

// TestNextCenterAfterFailures: a connect with no answer from a center
// gossip still sees alive is retried there once (one lost handshake on a
// lossy path must not send the stream to a far center); a second one, a
// link that died while running, or a center gossip no longer offers moves
// the stream to the next center at once.
func TestNextCenterAfterFailures(t *testing.T) {
	noAnswer := fmt.Errorf("srt connect x: %w", link.ErrNoAnswer)
	died := errors.New("peer idle timeout")
	cases := []struct {
		name  string
		alive [][]string // the alive centers before each attempt
		errs  []error    // lastErr of each attempt
		want  []string   // the center each attempt goes to
		moved []string   // the LinkMoved events published: "from->to: reason"
	}{
		{"no answer once: same center", [][]string{{"sin", "tyo"}, {"sin", "tyo"}},
			[]error{nil, noAnswer}, []string{"sin", "sin"}, nil},
		{"no answer twice: next center", [][]string{{"sin", "tyo"}, {"sin", "tyo"}, {"sin", "tyo"}},
			[]error{nil, noAnswer, noAnswer}, []string{"sin", "sin", "tyo"}, []string{"sin->tyo: " + noAnswer.Error()}},
		{"running link died: next center at once", [][]string{{"sin", "tyo"}, {"sin", "tyo"}},
			[]error{nil, died}, []string{"sin", "tyo"}, []string{"sin->tyo: peer idle timeout"}},
		{"no answer from a center gossip dropped: next center at once", [][]string{{"sin", "tyo"}, {"tyo"}},
			[]error{nil, noAnswer}, []string{"sin", "tyo"}, []string{"sin->tyo: " + noAnswer.Error()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := &fakeCluster{}
			bus := events.New(nil)
			defer bus.Close()
			sub := bus.Subscribe("test", 0)
			u, err := New(Config{Events: bus}, media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), cl, nil)
			if err != nil {
				t.Fatal(err)
			}
			l := &uplink{key: "live/x", exclude: map[string]time.Time{}}
			for i := range tc.want {
				cl.alive = tc.alive[i]
				tg, err := u.next(l, i+1, tc.errs[i])
				if err != nil {
					t.Fatalf("attempt %d: %v", i+1, err)
				}
				if want := "srt://" + tc.want[i] + ":9710"; len(tg.URL) < len(want) || tg.URL[:len(want)] != want {
					t.Errorf("attempt %d goes to %s, want %s", i+1, tg.URL, tc.want[i])
				}
			}
			if moved := linkMoves(bus, sub); !slices.Equal(moved, tc.moved) {
				t.Errorf("LinkMoved %q, want %q", moved, tc.moved)
			}
		})
	}
}

// linkMoves closes bus and returns the LinkMoved events sub received, as
// "from->to: reason".
func linkMoves(bus *events.Bus, sub *events.Subscription) []string {
	bus.Close()
	var moved []string
	sub.Run(context.Background(), func(r events.Record) {
		if e, ok := r.Event.(events.LinkMoved); ok {
			moved = append(moved, e.From+"->"+e.To+": "+e.Reason)
		}
	})
	return moved
}

// TestUplinksFollowMemberEvents: a center that failed loses its uplinks
// at once, and the move names why; one that left (it drains) gets a
// make-before-break move to the next center started while its link
// runs; other members' events and links to other centers are left alone.
func TestUplinksFollowMemberEvents(t *testing.T) {
	tests := []struct {
		name  string
		ev    events.Event
		moved bool
		why   string
	}{
		{"center left", events.MemberLeft{Member: events.Member{Name: "sin"}}, false, "center left the cluster"},
		{"center failed", events.MemberFailed{Member: events.Member{Name: "sin"}}, true, "center failed"},
		{"another center failed", events.MemberFailed{Member: events.Member{Name: "tyo"}}, false, ""},
		{"a member joined", events.MemberJoined{Member: events.Member{Name: "sin"}}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus := events.New(nil)
			defer bus.Close()
			sub := bus.Subscribe("test", 0)
			cl := &fakeCluster{alive: []string{"tyo"}}
			u, err := New(Config{Events: bus}, media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), cl, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			cancelled := false
			l := &uplink{key: "live/x", center: "sin", exclude: map[string]time.Time{}, cancel: func() { cancelled = true }}
			u.links[l.key] = l
			u.HandleEvent(events.Record{Seq: 1, Event: tc.ev})
			if cancelled != tc.moved {
				t.Fatalf("link to sin cancelled = %v, want %v", cancelled, tc.moved)
			}
			if _, left := tc.ev.(events.MemberLeft); left {
				u.mu.Lock()
				h := l.next
				u.mu.Unlock()
				if h == nil || h.center != "tyo" {
					t.Fatalf("no make-before-break move to tyo under way: %+v", h)
				}
				return
			}
			if !tc.moved {
				return
			}
			if _, err := u.next(l, 1, nil); err != nil {
				t.Fatal(err)
			}
			want := []string{"sin->tyo: " + tc.why}
			if moved := linkMoves(bus, sub); !slices.Equal(moved, want) {
				t.Errorf("LinkMoved %q, want %q", moved, want)
			}
		})
	}
}
