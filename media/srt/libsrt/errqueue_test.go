package libsrt

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// TestCallerSocketsClosed: a caller's own UDP socket and the error
// queue's duplicate of it are closed with the connection, and on every
// failed Dial (no answer, refused): after 20 of each the process holds
// no more descriptors than before (libsrt closes its copy from its
// garbage collector thread, so this is polled for).
func TestCallerSocketsClosed(t *testing.T) {
	ctx := context.Background()
	l := listen(t, ListenConfig{Decide: func(r Request) Decision {
		if r.StreamID == "no" {
			return Decision{Reject: RejXForbidden}
		}
		return Decision{}
	}})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.CloseNow() })
		}
	}()
	gone := listen(t, ListenConfig{})
	goneAddr := gone.Addr().String()
	gone.Close()
	before := openFDs(t)
	for range 20 {
		c, err := Dial(ctx, l.Addr().String(), Options{StreamID: "yes"})
		if err != nil {
			t.Fatal(err)
		}
		if c.errq == nil {
			t.Fatal("a dialed connection without its error queue")
		}
		c.CloseNow()
		if _, err := Dial(ctx, l.Addr().String(), Options{StreamID: "no"}); err == nil {
			t.Fatal("a refused stream id connected")
		}
		if _, err := Dial(ctx, goneAddr, Options{ConnectTimeout: 100 * time.Millisecond}); err == nil {
			t.Fatal("a dial to a closed port connected")
		}
	}
	poll.Until(t, 15*time.Second, "the callers' descriptors closed", func() bool { return openFDs(t) <= before })
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}
