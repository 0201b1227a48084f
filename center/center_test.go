package center

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// fakeDirectory records the center's directory calls.
type fakeDirectory struct {
	mu      sync.Mutex
	calls   []string
	entries []gossip.DirEntry // what Directory returns
	members map[string]gossip.Member
	marked  []string // MarkUnreachable's nodes
}

func (f *fakeDirectory) Name() string             { return "fra-1" }
func (f *fakeDirectory) Members() []gossip.Member { return nil }
func (f *fakeDirectory) Member(n string) (gossip.Member, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.members[n]
	return m, ok
}
func (f *fakeDirectory) MarkUnreachable(n string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.marked = append(f.marked, n)
	if m, ok := f.members[n]; ok {
		m.Unreachable = true
		f.members[n] = m
	}
}
func (f *fakeDirectory) Lookup(string) (gossip.DirEntry, bool) { return gossip.DirEntry{}, false }
func (f *fakeDirectory) WaitLookup(context.Context, string) (gossip.DirEntry, bool) {
	return gossip.DirEntry{}, false
}
func (f *fakeDirectory) DirectoryChanged() <-chan struct{} { return make(chan struct{}) }
func (f *fakeDirectory) RTT(string) (time.Duration, bool)  { return 0, false }
func (f *fakeDirectory) Directory() []gossip.DirEntry      { return f.entries }
func (f *fakeDirectory) Publish(s string) error            { f.add("publish " + s); return nil }
func (f *fakeDirectory) Unpublish(s string) error          { f.add("unpublish " + s); return nil }
func (f *fakeDirectory) add(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

// TestCenterFollowsEvents: the directory follows the node's stream
// events; pulled copies are not announced as hosted here; a Missed record
// re-announces what is live and removes what ended meanwhile.
func TestCenterFollowsEvents(t *testing.T) {
	tests := []struct {
		name string
		evs  []events.Event
		live []string // streams published on the hub (by "rtmp") first
		dir  []gossip.DirEntry
		want []string
	}{
		{"published, reconnected, ended",
			[]events.Event{events.StreamPublished{Stream: "live/a", Protocol: "rtmp"},
				events.StreamReconnected{Stream: "live/a", Protocol: "srt"}, events.StreamEnded{Stream: "live/a"}},
			nil, nil, []string{"publish live/a", "publish live/a", "unpublish live/a"}},
		{"a pulled copy is not hosted here",
			[]events.Event{events.StreamPublished{Stream: "live/p", Protocol: pullProtocol}},
			nil, nil, nil},
		{"an uplink replacing a pull is hosted here",
			[]events.Event{events.StreamPublished{Stream: "live/p", Protocol: pullProtocol},
				events.StreamReconnected{Stream: "live/p", Protocol: "srt", Takeover: true}},
			nil, nil, []string{"publish live/p"}},
		{"missed events: re-announce the live streams",
			[]events.Event{events.Missed{N: 3, First: 1, Last: 3}},
			[]string{"live/x", "live/y"}, nil, []string{"publish live/x", "publish live/y"}},
		{"missed events: a stream that ended in the gap leaves the directory",
			[]events.Event{events.Missed{N: 2, First: 1, Last: 2}},
			[]string{"live/x"},
			[]gossip.DirEntry{{Stream: "live/x", Node: "fra-1"}, {Stream: "live/gone", Node: "fra-1"}, {Stream: "live/sin", Node: "sin-1"}},
			[]string{"publish live/x", "unpublish live/gone"}},
		{"other events are not the center's",
			[]events.Event{events.MemberJoined{Member: events.Member{Name: "sin-1"}}, events.LinkMoved{Stream: "live/a"}},
			nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hub := media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
			defer hub.Close()
			for _, k := range tc.live {
				if _, err := hub.Publish(k, media.PublisherInfo{Protocol: "rtmp"}); err != nil {
					t.Fatal(err)
				}
			}
			dir := &fakeDirectory{entries: tc.dir}
			c, err := New(Config{}, hub, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, e := range tc.evs {
				c.HandleEvent(events.Record{Seq: uint64(i + 1), Event: e})
			}
			if !slices.Equal(dir.calls, tc.want) {
				t.Errorf("directory calls %q, want %q", dir.calls, tc.want)
			}
		})
	}
}

// membersOf is fakeDirectory with members.
type membersOf struct {
	fakeDirectory
	members []gossip.Member
}

func (m *membersOf) Members() []gossip.Member { return m.members }

// TestMemberAt: the backbone admits the addresses of members, a member
// that left included (a restarted node is "left" until the news of its
// rejoin arrives), and names the live member when a left one had the
// same address.
func TestMemberAt(t *testing.T) {
	member := func(name, addr string, st gossip.State) gossip.Member {
		return gossip.Member{Name: name, Addr: netip.MustParseAddrPort(addr), State: st}
	}
	cl := &membersOf{members: []gossip.Member{
		member("edge-old", "10.0.0.5:7946", gossip.StateLeft),
		member("edge-new", "10.0.0.5:7946", gossip.StateAlive),
		member("edge-left", "10.0.0.6:7946", gossip.StateLeft),
		member("edge-dead", "10.0.0.7:7946", gossip.StateDead),
	}}
	c, err := New(Config{}, media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct{ remote, want string }{
		{"10.0.0.5:4000", "edge-new"},
		{"10.0.0.6:4000", "edge-left"},
		{"10.0.0.7:4000", "edge-dead"},
		{"10.0.0.9:4000", ""},
	}
	for _, tc := range tests {
		got, err := c.memberAt(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.remote)))
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrNotMember) {
			t.Errorf("memberAt(%s) = %q, %v; want %q", tc.remote, got, err, tc.want)
		}
	}
}

// TestPullSource: a pull reads from the host the directory names unless
// this node's links found it dead (or gossip no longer calls it alive)
// and the dual-path stream has another usable host; a single-path
// stream stays with its one host (its edge re-places the uplink).
// noteFailure marks a host for a dead peer or an unanswered dial only.
func TestPullSource(t *testing.T) {
	const key = "live/d"
	alive := func(n string) gossip.Member { return gossip.Member{Name: n, State: gossip.StateAlive} }
	dead := func(n string) gossip.Member { m := alive(n); m.Unreachable = true; return m }
	suspect := func(n string) gossip.Member { m := alive(n); m.State = gossip.StateSuspect; return m }
	hostKeys := func(nodes ...string) []gossip.DirEntry {
		var out []gossip.DirEntry
		for _, n := range nodes {
			out = append(out, gossip.DirEntry{Stream: dualHostKey(key, n), Node: n})
		}
		return out
	}
	tests := []struct {
		name    string
		members []gossip.Member
		dir     []gossip.DirEntry
		want    string
	}{
		{"named host usable", []gossip.Member{alive("sin"), alive("tyo")}, hostKeys("sin", "tyo"), "sin"},
		{"named host found dead: the other dual host", []gossip.Member{dead("sin"), alive("tyo")}, hostKeys("sin", "tyo"), "tyo"},
		{"named host suspect: the other dual host", []gossip.Member{suspect("sin"), alive("tyo")}, hostKeys("sin", "tyo"), "tyo"},
		{"single path: the one host", []gossip.Member{dead("sin"), alive("tyo")}, nil, "sin"},
		{"the other host is dead too", []gossip.Member{dead("sin"), dead("tyo")}, hostKeys("sin", "tyo"), "sin"},
		{"never this node", []gossip.Member{dead("sin"), alive("fra-1")}, hostKeys("sin", "fra-1"), "sin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := &fakeDirectory{entries: tc.dir, members: map[string]gossip.Member{}}
			for _, m := range tc.members {
				dir.members[m.Name] = m
			}
			c, err := New(Config{}, media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.source(key, gossip.DirEntry{Stream: key, Node: "sin"}); got != tc.want {
				t.Errorf("source = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("noteFailure", func(t *testing.T) {
		dir := &fakeDirectory{members: map[string]gossip.Member{"a": alive("a"), "b": alive("b"), "c": alive("c"), "d": alive("d")}}
		c, err := New(Config{}, media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler)), dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.noteFailure("a", fmt.Errorf("srt x: %w", fmt.Errorf("gone: %w", libsrt.ErrPeerDead)))
		c.noteFailure("b", fmt.Errorf("srt connect x: %w", link.ErrNoAnswer))
		c.noteFailure("c", fmt.Errorf("srt connect x: %w", link.ErrRefused))
		c.noteFailure("d", nil)
		c.noteFailure("a", libsrt.ErrPeerDead) // marked already: once
		if want := []string{"a", "b"}; !slices.Equal(dir.marked, want) {
			t.Errorf("marked %q, want %q", dir.marked, want)
		}
	})
}

// TestStandbyAfterTakeover: after a standby took a dual-path stream over,
// the next standby waits for the old active pull's end, and is not
// started from its host when that pull found the host dead (its OnEnd
// marks it), although gossip still calls it alive.
func TestStandbyAfterTakeover(t *testing.T) {
	const key = "live/d"
	for _, tc := range []struct {
		name      string
		foundDead bool // the active pull's session ended with its host dead
		want      string
	}{{"the old host found dead: no standby", true, ""}, {"the old host usable: the standby from it", false, "tyo"}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := &fakeDirectory{members: map[string]gossip.Member{
					"tyo": {Name: "tyo", State: gossip.StateAlive}, "sin": {Name: "sin", State: gossip.StateAlive}}}
				for _, n := range []string{"tyo", "sin"} {
					dir.entries = append(dir.entries, gossip.DirEntry{Stream: dualHostKey(key, n), Node: n})
				}
				hub := media.NewHub(media.DefaultHubConfig(), slog.New(slog.DiscardHandler))
				defer hub.Close()
				c, err := New(Config{}, hub, dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				active := &pull{from: "tyo", done: make(chan struct{}), cancel: func() {}}
				// (the standby's puller, not run: the next standby is handed over from it)
				sb := &pull{from: "sin", done: make(chan struct{}), cancel: func() {},
					p: link.NewPuller(hub, link.PullConfig{Key: key, Next: func(int, error) (link.Target, error) { return link.Target{}, link.ErrStop }}, nil)}
				c.mu.Lock()
				c.pulls[key], active.standby = active, sb
				c.mu.Unlock()
				c.promoteStandby(key, active, sb)
				synctest.Wait()
				standby := func() string {
					c.mu.Lock()
					defer c.mu.Unlock()
					if c.pulls[key] != sb {
						t.Fatalf("the pull of %s is not the standby that took over", key)
					}
					if sb.standby == nil {
						return ""
					}
					return sb.standby.from
				}
				if got := standby(); got != "" {
					t.Fatalf("a standby from %s before the old active pull ended", got)
				}
				if tc.foundDead {
					c.noteFailure("tyo", libsrt.ErrPeerDead)
				}
				close(active.done)
				synctest.Wait()
				if got := standby(); got != tc.want {
					t.Errorf("standby from %q, want %q", got, tc.want)
				}
			})
		})
	}
}
