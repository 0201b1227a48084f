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
			runtime.GC()
			kept := 0
			for _, w := range first {
				if w.Value() != nil {
					kept++
				}
			}
			if kept != 0 {
				t.Errorf("%d of the first GOP's 30 packets still alive after the lane released them", kept)
			}
			runtime.KeepAlive(buf)
		})
	}
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
