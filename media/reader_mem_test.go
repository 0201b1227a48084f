package media_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestNextDropsDelivered: a reader's batch buffer does not keep packets
// alive once the lane released them. A player at the live edge gets small
// batches after the large one of the GOP cache; the rest of that first
// batch stayed in its buffer, so every reader kept an old GOP's packets.
// Callers pass back what Next returned (the senders), or buf[:0] of their
// array (the flow runner); Next clears what the last batch left either way,
// in a large array too.
func TestNextDropsDelivered(t *testing.T) {
	for _, tc := range []struct {
		name  string
		slots int
		again func(buf, got []*unit.Packet) []*unit.Packet
	}{
		{"the batch passed back", 64, func(_, got []*unit.Packet) []*unit.Packet { return got }},
		{"buf[:0] of 4096 slots", 4096, func(buf, _ []*unit.Packet) []*unit.Packet { return buf[:0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t, func(c *media.HubConfig) { c.RingSlack = -1 }) // only the newest GOP
			p := publish(t, h, "live/weak")
			write(t, p, vhdr(0))
			rd := subscribe(t, h, "live/weak")
			var first []weak.Pointer[unit.Packet]
			for i := range 30 {
				pk := inter(int64(i) * 40)
				if i == 0 {
					pk = key(0)
				}
				first = append(first, weak.Make(pk))
				write(t, p, pk)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			buf := make([]*unit.Packet, 0, tc.slots)
			got, err := rd.Next(ctx, buf)
			if err != nil || len(got) != 31 {
				t.Fatalf("first batch: %d packets, %v; want the header and 30 frames", len(got), err)
			}
			// a new GOP: the lane lets the first go
			write(t, p, key(1200))
			got, err = rd.Next(ctx, tc.again(buf, got))
			if err != nil || len(got) != 1 {
				t.Fatalf("second batch: %d packets, %v; want the new keyframe", len(got), err)
			}
			if kept := alive(first); kept != 0 {
				t.Errorf("%d of the first GOP's 30 packets still alive after the lane released them", kept)
			}
			runtime.KeepAlive(buf)
		})
	}
}

// alive returns how many of the packets are still reachable after a GC.
func alive(ws []weak.Pointer[unit.Packet]) int {
	runtime.GC()
	n := 0
	for _, w := range ws {
		if w.Value() != nil {
			n++
		}
	}
	return n
}

// BenchmarkNextLargeBuffer: one packet per Next into a 4096-slot buffer,
// as a player at the live edge gets them; the clearing of the last batch
// costs what that batch held, not the buffer's capacity.
func BenchmarkNextLargeBuffer(b *testing.B) {
	h := media.NewHub(media.DefaultHubConfig(), quietLog())
	defer h.Close()
	p, err := h.Publish("live/bench", media.PublisherInfo{Protocol: "test"})
	if err != nil {
		b.Fatal(err)
	}
	p.Write(vhdr(0))
	p.Write(key(0))
	rd, err := h.Subscribe(context.Background(), "live/bench", media.SubscribeOptions{Info: media.ReaderInfo{Protocol: "test"}})
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	ctx := context.Background()
	buf, _ := rd.Next(ctx, make([]*unit.Packet, 0, 4096)) // the header and the keyframe
	pkts := make([]*unit.Packet, b.N)
	for i := range pkts {
		pkts[i] = inter(int64(i+1) * 40)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := p.Write(pkts[i]); err != nil {
			b.Fatal(err)
		}
		if buf, err = rd.Next(ctx, buf); err != nil || len(buf) != 1 {
			b.Fatalf("%d packets, %v", len(buf), err)
		}
	}
}

// TestSlackOnlyWhileRead: the slack before the newest keyframe is kept
// only while a reader has yet to read it. With readers at the live edge,
// or none, the previous GOP is let go when a keyframe comes (the 64 KiB
// slack kept the last 64 KiB of it in every stream); a reader still in it
// gets the rest without a skip, and a reader joining then starts at the
// new keyframe.
func TestSlackOnlyWhileRead(t *testing.T) {
	frame := func(ts int64, keyframe bool) *unit.Packet { return videoFrame(ts, keyframe, 8<<10) }
	for _, tc := range []struct {
		name   string
		reader bool // attached before the first GOP
		behind int  // frames of the first GOP it has not read when the keyframe comes
	}{
		{"a reader at the live edge", true, 0},
		{"no reader", false, 0},
		{"a reader three frames behind", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t, nil) // the default 64 KiB slack: the first GOP's 48 KiB fit it
			p := publish(t, h, "live/slack")
			write(t, p, vhdr(0))
			var rd *media.Reader
			if tc.reader {
				rd = subscribe(t, h, "live/slack")
			}
			var first []weak.Pointer[unit.Packet]
			for i := range 6 {
				pk := frame(int64(i)*40, i == 0)
				first = append(first, weak.Make(pk))
				write(t, p, pk)
				if rd != nil && i == 5-tc.behind {
					if _, err := drain(rd); err != nil {
						t.Fatal(err)
					}
				}
			}
			k := frame(240, true)
			write(t, p, k, frame(280, false))
			if rd != nil {
				got, err := drain(rd)
				if err != nil {
					t.Fatal(err)
				}
				if body := media1(got); len(body) != tc.behind+2 || body[tc.behind] != k || rd.Skipped() != 0 {
					t.Fatalf("reader got %d media packets, skipped %d; want the %d it had not read, the keyframe and one frame",
						len(body), rd.Skipped(), tc.behind)
				}
				write(t, p, frame(320, false)) // the writer trims on its next packet
			}
			if kept := alive(first); kept != 0 {
				t.Errorf("%d of the first GOP's 6 frames kept once no reader has them to read", kept)
			}
			late := subscribe(t, h, "live/slack")
			got, err := drain(late)
			if err != nil {
				t.Fatal(err)
			}
			if body := media1(got); len(body) == 0 || body[0] != k {
				t.Fatalf("late reader got %d media packets, want them from the newest keyframe", len(body))
			}
		})
	}
}
