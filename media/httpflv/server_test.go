package httpflv

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// player is a raw HTTP-FLV client: it sends the request, then counts the
// FLV tags of the response until it ends.
type player struct {
	c    net.Conn
	tags chan byte // the type of each tag received
	end  chan error
}

func play(t *testing.T, addr, path string) *player {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	p := &player{c: c, tags: make(chan byte, 1024), end: make(chan error, 1)}
	go func() {
		br := bufio.NewReader(c)
		for { // the response head, up to the blank line
			line, err := br.ReadString('\n')
			if err != nil {
				p.end <- err
				return
			}
			if line == "\r\n" {
				break
			}
		}
		var hdr [13]byte // FLV header and the first PreviousTagSize
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			p.end <- err
			return
		}
		for {
			var th [11]byte
			if _, err := io.ReadFull(br, th[:]); err != nil {
				p.end <- err
				return
			}
			n := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
			if _, err := io.CopyN(io.Discard, br, int64(n+4)); err != nil {
				p.end <- err
				return
			}
			p.tags <- th[0]
		}
	}()
	return p
}

// wantTags waits for n tags.
func (p *player) wantTags(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-p.tags:
		case err := <-p.end:
			t.Fatalf("response ended after %d of %d tags: %v", i, n, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d tags within 10 s", i, n)
		}
	}
}

// wantEnd waits for the response to end (the server closed it).
func (p *player) wantEnd(t *testing.T, what string) {
	t.Helper()
	for {
		select {
		case <-p.tags:
		case err := <-p.end:
			if !errors.Is(err, io.EOF) {
				t.Errorf("%s: the response ended with %v, want the server closing it (EOF)", what, err)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the response did not end within 10 s", what)
		}
	}
}

// TestPlayerEnds: an HTTP-FLV player (written by the stream's fan-out
// writer, its connection's goroutine waiting for the client) gets the
// stream; one that leaves is let go (the server counts no player), the
// response ends when the stream ends, and when the server closes.
func TestPlayerEnds(t *testing.T) {
	cfg := media.DefaultHubConfig()
	cfg.ReconnectGrace = 10 * time.Millisecond
	hub := media.NewHub(cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(hub.Close)
	s, err := New(Config{Listen: "127.0.0.1:0"}, hub, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	addr := s.Addr().String()

	pub, err := hub.Publish("live/a", media.PublisherInfo{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	frame := func(i int) *unit.Packet {
		body := []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41}
		if i%10 == 0 {
			body = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}
		}
		return &unit.Packet{Kind: unit.KindVideo, Time: int64(i) * 40, Keyframe: i%10 == 0, Payload: body}
	}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := pub.Write(frame(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pub.Write(&unit.Packet{Kind: unit.KindVideo, Header: true, Payload: []byte{0x17, 0, 0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	write(0, 1)

	t.Run("a player that leaves is let go", func(t *testing.T) {
		p := play(t, addr, "/live/a.flv")
		p.wantTags(t, 2) // the header and the keyframe of the GOP cache
		poll.Until(t, 10*time.Second, "one player counted", func() bool { return s.ConnCount() == 1 })
		write(1, 5)
		p.wantTags(t, 4)
		p.c.Close()
		poll.Until(t, 10*time.Second, "the player that left no longer counted", func() bool { return s.ConnCount() == 0 })
	})
	t.Run("the response ends with the stream", func(t *testing.T) {
		p := play(t, addr, "/live/a.flv")
		p.wantTags(t, 2)
		write(5, 8)
		p.wantTags(t, 3)
		pub.Close()
		p.wantEnd(t, "stream ended")
		poll.Until(t, 10*time.Second, "no player counted", func() bool { return s.ConnCount() == 0 })
	})
	t.Run("the response ends when the server closes", func(t *testing.T) {
		pub2, err := hub.Publish("live/b", media.PublisherInfo{Protocol: "test"})
		if err != nil {
			t.Fatal(err)
		}
		defer pub2.Close()
		if err := pub2.Write(frame(0)); err != nil {
			t.Fatal(err)
		}
		p := play(t, addr, "/live/b.flv")
		p.wantTags(t, 1)
		s.Close()
		p.wantEnd(t, "server closed")
	})
}
