package media_test

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/relaymesh/relaymesh/media"
)

// TestNextDropsDelivered: a reader's batch buffer does not keep packets
// alive once the lane released them. A player at the live edge gets small
// batches after the large one of the GOP cache; the rest of that first
// batch stayed in its buffer, so every reader kept an old GOP's packets.
func TestNextDropsDelivered(t *testing.T) {
	h := newHub(t, func(c *media.HubConfig) { c.RingSlack = -1 }) // only the newest GOP
	p := publish(t, h, "live/weak")
	write(t, p, vhdr(0))
	rd := subscribe(t, h, "live/weak")
	var first []weak.Pointer[media.Packet]
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
	buf, err := rd.Next(ctx, make([]*media.Packet, 0, 64))
	if err != nil || len(buf) != 31 {
		t.Fatalf("first batch: %d packets, %v; want the header and 30 frames", len(buf), err)
	}
	// a new GOP: the lane lets the first go
	write(t, p, key(1200))
	buf, err = rd.Next(ctx, buf)
	if err != nil || len(buf) != 1 {
		t.Fatalf("second batch: %d packets, %v; want the new keyframe", len(buf), err)
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
}
