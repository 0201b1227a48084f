package rtmpdial

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		name, url string
		want      Target
		bad       bool
	}{
		{"with port", "rtmp://127.0.0.1:1936/live/bench", Target{Addr: "127.0.0.1:1936", App: "live", Name: "bench", TCURL: "rtmp://127.0.0.1:1936/live"}, false},
		{"default port", "rtmp://example.test/live/x", Target{Addr: "example.test:1935", App: "live", Name: "x", TCURL: "rtmp://example.test:1935/live"}, false},
		{"query kept on the name", "rtmp://h:1/app/s?token=a", Target{Addr: "h:1", App: "app", Name: "s?token=a", TCURL: "rtmp://h:1/app"}, false},
		{"nested app", "rtmp://h:1/a/b/s", Target{Addr: "h:1", App: "a/b", Name: "s", TCURL: "rtmp://h:1/a/b"}, false},
		{"no name", "rtmp://h:1/live", Target{}, true},
		{"http", "http://h:1/live/x", Target{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseURL(c.url)
			if c.bad {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %+v, want an error", c.url, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseURL(%q) = %+v, %v; want %+v", c.url, got, err, c.want)
			}
		})
	}
}

// TestReplayOnce: with once, Replay hands each media packet over once, in
// order with its own time, and returns at the clip's end.
func TestReplayOnce(t *testing.T) {
	c := &Clip{Dur: 30}
	for i := range 3 {
		c.Media = append(c.Media, &unit.Packet{Kind: unit.KindVideo, Time: int64(i * 10), Payload: []byte{byte(i)}})
	}
	var got []int64
	flushes := 0
	err := c.Replay(context.Background(), time.Now(), 0, true, func(p *unit.Packet, ts int64) error {
		if int64(p.Payload[0])*10 != ts {
			t.Errorf("packet %d handed over at %d ms", p.Payload[0], ts)
		}
		got = append(got, ts)
		return nil
	}, func() error { flushes++; return nil })
	if err != nil || !slices.Equal(got, []int64{0, 10, 20}) || flushes == 0 {
		t.Fatalf("Replay = %v after %v (%d flushes), want nil after [0 10 20] and a flush", err, got, flushes)
	}
}
