package center

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
)

// fakeDirectory records the center's directory calls.
type fakeDirectory struct {
	mu      sync.Mutex
	calls   []string
	entries []gossip.DirEntry // what Directory returns
}

func (f *fakeDirectory) Name() string                          { return "fra-1" }
func (f *fakeDirectory) Members() []gossip.Member              { return nil }
func (f *fakeDirectory) Member(string) (gossip.Member, bool)   { return gossip.Member{}, false }
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
