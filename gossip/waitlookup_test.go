package gossip

import (
	"context"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// TestWaitLookup: a node with seeds is not synced until its first
// push/pull with a peer (a lookup then only waits, up to its context);
// after it, WaitLookup returns a stream published later as soon as the
// directory names it, and a stream nobody publishes when its context ends.
func TestWaitLookup(t *testing.T) {
	a := startNode(t, "a", NodeMeta{Role: RoleCenter, Site: "fra"}, "")
	select {
	case <-a.Synced():
	default:
		t.Fatal("a node without seeds is not synced at start")
	}
	b := startNode(t, "b", NodeMeta{Role: RoleCenter, Site: "fra"}, "", a.Addr().String())
	poll.Until(t, 10*time.Second, "b's first directory sync", func() bool {
		select {
		case <-b.Synced():
			return true
		default:
			return false
		}
	})

	type result struct {
		e  DirEntry
		ok bool
	}
	res := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		e, ok := b.WaitLookup(ctx, "live/later")
		res <- result{e, ok}
	}()
	select {
	case r := <-res:
		t.Fatalf("WaitLookup returned before the stream was published: %+v", r)
	default:
	}
	if err := a.Publish("live/later"); err != nil {
		t.Fatal(err)
	}
	if r := <-res; !r.ok || r.e.Node != "a" {
		t.Fatalf("WaitLookup of a stream published on a meanwhile = %+v, want a", r)
	}

	short, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	if e, ok := b.WaitLookup(short, "live/never"); ok {
		t.Fatalf("WaitLookup of a stream nobody publishes = %+v, want none when its context ends", e)
	}
}
