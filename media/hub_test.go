package media_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Synthetic FLV tag bodies: enough for the hub, which only looks at the
// packet flags, and for ParseHeader, which tolerates short records.
var (
	metaBody  = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0x08, 0, 0, 0, 0}
	vhdrBody  = []byte{0x17, 0x00, 0, 0, 0}
	ahdrBody  = []byte{0xaf, 0x00, 0x11, 0x90}
	keyBody   = []byte{0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65}
	interBody = []byte{0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41}
	audioBody = []byte{0xaf, 0x01, 0x21, 0x10}
)

func meta(t int64) *unit.Packet {
	return &unit.Packet{Kind: unit.KindData, Time: t, Header: true, Payload: metaBody}
}
func vhdr(t int64) *unit.Packet {
	return &unit.Packet{Kind: unit.KindVideo, Time: t, Header: true, Payload: vhdrBody}
}
func ahdr(t int64) *unit.Packet {
	return &unit.Packet{Kind: unit.KindAudio, Time: t, Header: true, Payload: ahdrBody}
}
func key(t int64) *unit.Packet {
	return &unit.Packet{Kind: unit.KindVideo, Time: t, Keyframe: true, Payload: keyBody}
}
func inter(t int64) *unit.Packet {
	return &unit.Packet{Kind: unit.KindVideo, Time: t, Payload: interBody}
}
func audio(t int64) *unit.Packet {
	return &unit.Packet{Kind: unit.KindAudio, Time: t, Payload: audioBody}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHub(t *testing.T, mod func(*media.HubConfig)) *media.Hub {
	t.Helper()
	cfg := media.DefaultHubConfig()
	if mod != nil {
		mod(&cfg)
	}
	h := media.NewHub(cfg, quietLog())
	t.Cleanup(h.Close)
	return h
}

// doneWithin runs fn in its own goroutine and fails the test if it returns
// an error or does not return within d (a bound against a block, not a
// timing assertion).
func doneWithin(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s: not done within %s", what, d)
	}
}

func publish(t *testing.T, h *media.Hub, key string) *media.Publisher {
	t.Helper()
	p, err := h.Publish(key, media.PublisherInfo{Protocol: "test", Remote: t.Name()})
	if err != nil {
		t.Fatalf("publish %s: %v", key, err)
	}
	return p
}

func subscribe(t *testing.T, h *media.Hub, key string) *media.Reader {
	t.Helper()
	r, err := h.Subscribe(context.Background(), key, media.SubscribeOptions{Info: media.ReaderInfo{Protocol: "test"}})
	if err != nil {
		t.Fatalf("subscribe %s: %v", key, err)
	}
	t.Cleanup(r.Close)
	return r
}

func write(t *testing.T, p *media.Publisher, pkts ...*unit.Packet) {
	t.Helper()
	for _, pkt := range pkts {
		if err := p.Write(pkt); err != nil {
			t.Fatalf("write %s@%d: %v", pkt.Kind, pkt.Time, err)
		}
	}
}

// next calls Next with a bound so a hub bug cannot hang the test.
func next(r *media.Reader, capacity int) ([]*unit.Packet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.Next(ctx, make([]*unit.Packet, 0, capacity))
}

// drain reads until the reader has nothing more right now (a short Next
// that ends on its context), or an error.
func drain(r *media.Reader) ([]*unit.Packet, error) {
	var all []*unit.Packet
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		pkts, err := r.Next(ctx, make([]*unit.Packet, 0, 64))
		cancel()
		all = append(all, pkts...)
		if errors.Is(err, context.DeadlineExceeded) {
			return all, nil
		}
		if err != nil {
			return all, err
		}
	}
}

// videoFrame is a video frame of size bytes.
func videoFrame(ts int64, keyframe bool, size int) *unit.Packet {
	b := make([]byte, size)
	b[0] = 0x27
	if keyframe {
		b[0] = 0x17
	}
	return &unit.Packet{Kind: unit.KindVideo, Time: ts, Keyframe: keyframe, Payload: b}
}

func media1(pkts []*unit.Packet) []*unit.Packet {
	var out []*unit.Packet
	for _, p := range pkts {
		if !p.Header {
			out = append(out, p)
		}
	}
	return out
}

func samePackets(t *testing.T, what string, got, want []*unit.Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d packets %v, want %d %v", what, len(got), describe(got), len(want), describe(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: packet %d is %s, want %s (got %v)", what, i, describe(got[i:i+1]), describe(want[i:i+1]), describe(got))
		}
	}
}

func describe(pkts []*unit.Packet) []string {
	out := make([]string, len(pkts))
	for i, p := range pkts {
		s := p.Kind.String()
		switch {
		case p.Header:
			s += "-hdr"
		case p.Keyframe:
			s += "-key"
		}
		out[i] = s + "@" + itoa(p.Time)
	}
	return out
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// TestReaderStart: a new reader gets the headers (meta, video, audio)
// first, then the GOP from the newest keyframe; one that joins before any
// keyframe waits for one.
func TestReaderStart(t *testing.T) {
	t.Run("headers then GOP from the newest keyframe", func(t *testing.T) {
		h := newHub(t, nil)
		p := publish(t, h, "live/a")
		m, v, a := meta(0), vhdr(0), ahdr(0)
		// headers are written in an order different from the replay order
		write(t, p, a, v, m)
		write(t, p, key(0), audio(10), inter(40), inter(80))
		k2, a2, i2, i3 := key(120), audio(130), inter(160), inter(200)
		write(t, p, k2, a2, i2, i3)
		r := subscribe(t, h, "live/a")
		got, err := next(r, 64)
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, "first Next", got, []*unit.Packet{m, v, a, k2, a2, i2, i3})
		// then live packets follow, without headers again
		i4 := inter(240)
		write(t, p, i4)
		got, err = next(r, 64)
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, "second Next", got, []*unit.Packet{i4})
	})
	t.Run("newest header of each kind wins", func(t *testing.T) {
		h := newHub(t, nil)
		p := publish(t, h, "live/a")
		v2 := vhdr(40)
		write(t, p, meta(0), vhdr(0), key(0), v2, key(40))
		r := subscribe(t, h, "live/a")
		got, err := next(r, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 2 || got[1] != v2 {
			t.Fatalf("got %v, want the second video header replayed", describe(got))
		}
	})
	t.Run("joins before any keyframe and waits for one", func(t *testing.T) {
		h := newHub(t, nil)
		p := publish(t, h, "live/a")
		m, v := meta(0), vhdr(0)
		write(t, p, m, v, inter(0), inter(40))
		r := subscribe(t, h, "live/a")
		got, err := next(r, 64)
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, "before a keyframe", got, []*unit.Packet{m, v})
		write(t, p, inter(80), audio(90))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		got, err = r.Next(ctx, make([]*unit.Packet, 0, 64))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || len(got) != 0 {
			t.Fatalf("without a keyframe Next returned %v, %v; want nothing until a keyframe", describe(got), err)
		}
		k, i := key(120), inter(160)
		write(t, p, k, i)
		got, err = next(r, 64)
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, "after the keyframe", got, []*unit.Packet{k, i})
	})
	t.Run("audio-only stream starts at the newest audio frame", func(t *testing.T) {
		h := newHub(t, nil)
		p := publish(t, h, "live/a")
		ah := ahdr(0)
		a3 := audio(46)
		write(t, p, ah, audio(0), audio(23), a3)
		r := subscribe(t, h, "live/a")
		got, err := next(r, 64)
		if err != nil {
			t.Fatal(err)
		}
		samePackets(t, "audio only", got, []*unit.Packet{ah, a3})
	})
}

// TestFanOut: every reader receives the very same packets, shared by
// reference, and their wire forms are built once.
func TestFanOut(t *testing.T) {
	for _, n := range []int{1, 2, 8} {
		t.Run(itoa(int64(n))+" readers", func(t *testing.T) {
			h := newHub(t, nil)
			p := publish(t, h, "live/fan")
			readers := make([]*media.Reader, n)
			for i := range readers {
				readers[i] = subscribe(t, h, "live/fan")
			}
			var want []*unit.Packet
			want = append(want, meta(0), vhdr(0), ahdr(0))
			for i := range 100 {
				if i%25 == 0 {
					want = append(want, key(int64(i*40)))
				} else {
					want = append(want, inter(int64(i*40)))
				}
				want = append(want, audio(int64(i*40+5)))
			}
			write(t, p, want...)
			var first []*unit.Packet
			for i, r := range readers {
				got, err := drain(r)
				if err != nil {
					t.Fatalf("reader %d: %v", i, err)
				}
				// readers that attached before the headers were written
				// get them once, in the ring order
				samePackets(t, "reader "+itoa(int64(i)), got, want)
				if i == 0 {
					first = got
					continue
				}
				samePackets(t, "reader "+itoa(int64(i))+" vs reader 0", got, first)
				for j := range got {
					if got[j] != first[j] {
						t.Fatalf("reader %d packet %d: a copy, want the same packet", i, j)
					}
				}
			}
		})
	}
}

// TestSlowReader: a reader that falls behind skips to the newest keyframe
// (headers again, never a non-key frame first), one that keeps falling
// behind is disconnected and counted, and none of this blocks the writer.
// writeGOPs writes ms milliseconds of 25 fps video with a keyframe every
// second and returns the last keyframe.
func writeGOPs(t *testing.T, p *media.Publisher, ms int64) *unit.Packet {
	t.Helper()
	var lastKey *unit.Packet
	for ts := int64(0); ts < ms; ts += 40 {
		if ts%1000 == 0 {
			lastKey = key(ts)
			write(t, p, lastKey)
		} else {
			write(t, p, inter(ts))
		}
	}
	return lastKey
}

func TestSlowReader(t *testing.T) {
	const ring = 64
	small := func(c *media.HubConfig) { c.RingPackets = ring }

	// gop writes n packets, a keyframe every 10, and returns the last key.
	gop := func(t *testing.T, p *media.Publisher, t0 int64, n int) (lastKey *unit.Packet, next int64) {
		for i := range n {
			ts := t0 + int64(i)*40
			if i%10 == 0 {
				lastKey = key(ts)
				write(t, p, lastKey)
			} else {
				write(t, p, inter(ts))
			}
		}
		return lastKey, t0 + int64(n)*40
	}

	t.Run("overrun skips to the newest keyframe with headers", func(t *testing.T) {
		h := newHub(t, small)
		p := publish(t, h, "live/slow")
		m, v := meta(0), vhdr(0)
		write(t, p, m, v)
		r := subscribe(t, h, "live/slow")
		if _, err := next(r, 64); err != nil { // headers
			t.Fatal(err)
		}
		lastKey, _ := gop(t, p, 0, 4*ring+3)
		got, err := next(r, 256)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 3 || got[0] != m || got[1] != v {
			t.Fatalf("after a skip got %v, want the headers first", describe(got))
		}
		body := media1(got)
		if len(body) == 0 || body[0] != lastKey {
			t.Fatalf("after a skip got %v, want the newest keyframe (%d) first", describe(got), lastKey.Time)
		}
		if r.Skipped() == 0 {
			t.Errorf("Skipped() = 0 after an overrun")
		}
		if skips, dropped := h.Stream("live/slow").Skips(); skips == 0 || dropped != 0 {
			t.Errorf("stream Skips() = %d, %d; want >0 skips, 0 dropped", skips, dropped)
		}
	})

	t.Run("too many skips disconnects and counts", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { small(c); c.MaxSkips = 2; c.SlowReaderWindow = time.Hour })
		p := publish(t, h, "live/slow")
		write(t, p, meta(0), vhdr(0))
		r := subscribe(t, h, "live/slow")
		ts := int64(0)
		var err error
		for i := 0; i < 3 && err == nil; i++ {
			_, ts = gop(t, p, ts, 2*ring)
			_, err = drain(r)
		}
		if !errors.Is(err, media.ErrSlowReader) {
			t.Fatalf("after 3 overruns with MaxSkips 2: err = %v, want ErrSlowReader", err)
		}
		if _, dropped := h.Stream("live/slow").Skips(); dropped != 1 {
			t.Errorf("dropped = %d, want 1", dropped)
		}
	})

	t.Run("a stuck reader never blocks the writer", func(t *testing.T) {
		h := newHub(t, small)
		p := publish(t, h, "live/slow")
		_ = subscribe(t, h, "live/slow") // never reads
		doneWithin(t, 30*time.Second, "the writer, while a reader is stuck", func() error {
			for i := range 100 * ring {
				pk := inter(int64(i) * 40)
				if i%10 == 0 {
					pk = key(int64(i) * 40)
				}
				if err := p.Write(pk); err != nil {
					return err
				}
			}
			return nil
		})
	})

	t.Run("lag in media time skips to the newest keyframe", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.MaxReaderLag = time.Second })
		p := publish(t, h, "live/lag")
		write(t, p, vhdr(0))
		r := subscribe(t, h, "live/lag")
		if _, err := next(r, 64); err != nil {
			t.Fatal(err)
		}
		// 4 s of video, a keyframe every second: well inside the ring
		lastKey := writeGOPs(t, p, 4000)
		got, err := next(r, 256)
		if err != nil {
			t.Fatal(err)
		}
		body := media1(got)
		if len(body) == 0 || body[0] != lastKey {
			t.Fatalf("lagging reader got %v, want the newest keyframe (%d) first", describe(got), lastKey.Time)
		}
		if r.Skipped() == 0 {
			t.Errorf("Skipped() = 0 after lagging")
		}
	})

	t.Run("SetMaxReaderLag applies to an attached reader", func(t *testing.T) {
		// 10 s allowed at first: 4 s behind would not skip
		h := newHub(t, func(c *media.HubConfig) { c.MaxReaderLag = 10 * time.Second })
		p := publish(t, h, "live/setlag")
		write(t, p, vhdr(0))
		r := subscribe(t, h, "live/setlag")
		if _, err := next(r, 64); err != nil {
			t.Fatal(err)
		}
		h.SetMaxReaderLag(time.Second) // what a reload of limits.max_reader_lag does
		lastKey := writeGOPs(t, p, 4000)
		got, err := next(r, 256)
		if err != nil {
			t.Fatal(err)
		}
		if body := media1(got); len(body) == 0 || body[0] != lastKey {
			t.Fatalf("reader got %v after SetMaxReaderLag(1s), want the newest keyframe (%d) first", describe(got), lastKey.Time)
		}
	})

	t.Run("a GOP longer than MaxReaderLag still plays", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.MaxReaderLag = time.Second })
		p := publish(t, h, "live/longgop")
		write(t, p, vhdr(0))
		// one 3 s GOP: the encoder's keyframe interval is above the lag limit
		k := key(0)
		write(t, p, k)
		for ts := int64(40); ts < 3000; ts += 40 {
			write(t, p, inter(ts))
		}
		r := subscribe(t, h, "live/longgop")
		got, err := drain(r)
		if err != nil {
			t.Fatalf("new reader on a long GOP: %v (skipped %d)", err, r.Skipped())
		}
		if body := media1(got); len(body) == 0 || body[0] != k {
			t.Fatalf("got %v, want the GOP from its keyframe", describe(got))
		}
	})
}

// TestReconnectGrace: readers stay attached while a publisher reconnects
// within the grace, resume at the new session's first keyframe on one
// monotonic timeline, and end after the grace without a publisher.
func TestReconnectGrace(t *testing.T) {
	t.Run("reader resumes at the new session's keyframe, timestamps monotonic", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.ReconnectGrace = time.Minute })
		p1 := publish(t, h, "live/re")
		write(t, p1, meta(0), vhdr(0), ahdr(0))
		for ts := int64(5000); ts < 6000; ts += 40 { // the first session starts late
			if ts == 5000 {
				write(t, p1, key(ts))
			} else {
				write(t, p1, inter(ts), audio(ts+5))
			}
		}
		r := subscribe(t, h, "live/re")
		s1, err := drain(r)
		if err != nil {
			t.Fatal(err)
		}
		last1 := s1[len(s1)-1].Time
		p1.Close()
		if h.Stream("live/re") == nil {
			t.Fatal("stream gone at once; want it kept for the grace")
		}
		p2 := publish(t, h, "live/re")
		if p2.Stream() != r.Stream() {
			t.Fatal("the second publisher got a new stream; the reader is orphaned")
		}
		// the new session restarts its clock at 0 and opens with a
		// non-key frame the reader must not get first
		k2 := key(40)
		write(t, p2, meta(0), vhdr(0), ahdr(0), inter(0), audio(5), k2, audio(45))
		for ts := int64(80); ts < 1000; ts += 40 {
			write(t, p2, inter(ts), audio(ts+5))
		}
		s2, err := drain(r)
		if err != nil {
			t.Fatalf("reader after the reconnect: %v", err)
		}
		body := media1(s2)
		if len(body) == 0 || body[0] != k2 {
			t.Fatalf("after the reconnect got %v, want the new session's first keyframe first", describe(s2[:min(len(s2), 8)]))
		}
		prev := last1
		for _, pk := range body {
			if pk.Time <= prev && pk.Kind == unit.KindVideo {
				t.Fatalf("video time went from %d to %d across the reconnect", prev, pk.Time)
			}
			if pk.Kind == unit.KindVideo {
				prev = pk.Time
			}
		}
		if body[0].Time <= last1 {
			t.Fatalf("first packet of session 2 at %d, not after session 1's last (%d)", body[0].Time, last1)
		}
	})

	t.Run("readers end after the grace without a publisher", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.ReconnectGrace = 200 * time.Millisecond })
		p := publish(t, h, "live/re")
		write(t, p, vhdr(0), key(0), inter(40))
		r := subscribe(t, h, "live/re")
		p.Close()
		var err error
		var got []*unit.Packet
		for err == nil {
			var pk []*unit.Packet
			pk, err = next(r, 64)
			got = append(got, pk...)
		}
		if !errors.Is(err, media.ErrStreamEnded) {
			t.Fatalf("after the grace: %v, want ErrStreamEnded", err)
		}
		if len(media1(got)) != 2 {
			t.Errorf("got %v before the end, want the 2 frames written", describe(got))
		}
		if h.Stream("live/re") != nil {
			t.Errorf("stream still listed after the grace")
		}
		if n := h.PublisherCount(); n != 0 {
			t.Errorf("PublisherCount = %d, want 0", n)
		}
	})

	t.Run("no grace ends the stream at once", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.ReconnectGrace = 0 })
		p := publish(t, h, "live/re")
		write(t, p, vhdr(0), key(0))
		r := subscribe(t, h, "live/re")
		p.Close()
		if _, err := drain(r); !errors.Is(err, media.ErrStreamEnded) {
			t.Fatalf("err = %v, want ErrStreamEnded", err)
		}
	})
}

// TestPublishLimits: a second publisher is refused or takes over; node and
// stream limits are enforced.
func TestPublishLimits(t *testing.T) {
	t.Run("second publisher refused", func(t *testing.T) {
		h := newHub(t, nil)
		p1 := publish(t, h, "live/x")
		_, err := h.Publish("live/x", media.PublisherInfo{Protocol: "test"})
		if !errors.Is(err, media.ErrStreamBusy) {
			t.Fatalf("second publish: %v, want ErrStreamBusy", err)
		}
		if err := p1.Write(key(0)); err != nil {
			t.Fatalf("first publisher after the refusal: %v", err)
		}
	})
	t.Run("takeover", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.Takeover = true })
		p1 := publish(t, h, "live/x")
		write(t, p1, vhdr(0), key(0), inter(40))
		r := subscribe(t, h, "live/x")
		if _, err := drain(r); err != nil {
			t.Fatal(err)
		}
		p2 := publish(t, h, "live/x")
		if err := p1.Write(inter(80)); !errors.Is(err, media.ErrTakenOver) {
			t.Fatalf("first publisher after takeover: %v, want ErrTakenOver", err)
		}
		k := key(0)
		write(t, p2, vhdr(0), k, inter(40))
		got, err := drain(r)
		if err != nil {
			t.Fatalf("reader after takeover: %v", err)
		}
		if body := media1(got); len(body) != 2 || body[0] != k {
			t.Fatalf("reader after takeover got %v, want the new publisher's GOP", describe(got))
		}
		if n := h.PublisherCount(); n != 1 {
			t.Errorf("PublisherCount = %d, want 1", n)
		}
		p1.Close() // the old connection's deferred Close must not detach the new one
		if _, ok := h.Stream("live/x").Publisher(); !ok {
			t.Fatal("the taken-over publisher's Close detached the new publisher")
		}
		write(t, p2, inter(80))
	})
	t.Run("max publishers", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.MaxPublishers = 2; c.ReconnectGrace = 0 })
		publish(t, h, "live/1")
		p2 := publish(t, h, "live/2")
		if _, err := h.Publish("live/3", media.PublisherInfo{}); !errors.Is(err, media.ErrTooManyPubs) {
			t.Fatalf("third publisher: %v, want ErrTooManyPubs", err)
		}
		p2.Close()
		publish(t, h, "live/3")
	})
	t.Run("takeover under a limit lowered below the publishers", func(t *testing.T) {
		// a reload lowers max_publishers to 1 with two publishing: a
		// takeover still replaces one (it adds none), and a reader
		// keeps getting the stream from the new publisher
		h := newHub(t, func(c *media.HubConfig) { c.MaxPublishers = 2; c.Takeover = true })
		p1 := publish(t, h, "live/1")
		publish(t, h, "live/2")
		write(t, p1, vhdr(0), key(0))
		r := subscribe(t, h, "live/1")
		if _, err := drain(r); err != nil {
			t.Fatal(err)
		}
		h.SetLimits(1, 0, 0, true, time.Minute)
		p3, err := h.Publish("live/1", media.PublisherInfo{Protocol: "test"})
		if err != nil {
			t.Fatalf("takeover under the lowered limit: %v", err)
		}
		if err := p1.Write(inter(40)); !errors.Is(err, media.ErrTakenOver) {
			t.Fatalf("old publisher after the takeover: %v, want ErrTakenOver", err)
		}
		k := key(80)
		write(t, p3, vhdr(80), k)
		got, err := drain(r)
		if err != nil || len(media1(got)) == 0 || media1(got)[0] != k {
			t.Fatalf("reader after the takeover got %v, %v; want the new publisher's keyframe", describe(got), err)
		}
		if n := h.PublisherCount(); n != 2 {
			t.Errorf("PublisherCount = %d, want 2 (the takeover adds none)", n)
		}
		if _, err := h.Publish("live/3", media.PublisherInfo{}); !errors.Is(err, media.ErrTooManyPubs) {
			t.Fatalf("a new stream over the lowered limit: %v, want ErrTooManyPubs", err)
		}
	})
	t.Run("max readers", func(t *testing.T) {
		h := newHub(t, func(c *media.HubConfig) { c.MaxReaders = 2 })
		publish(t, h, "live/x")
		subscribe(t, h, "live/x")
		r2 := subscribe(t, h, "live/x")
		if _, err := h.Subscribe(context.Background(), "live/x", media.SubscribeOptions{Info: media.ReaderInfo{Protocol: "test"}}); !errors.Is(err, media.ErrTooManyReaders) {
			t.Fatalf("third reader: %v, want ErrTooManyReaders", err)
		}
		r2.Close()
		subscribe(t, h, "live/x")
		if n := h.Stream("live/x").ReaderCount(); n != 2 {
			t.Errorf("ReaderCount = %d, want 2", n)
		}
	})
}

// TestMaxBitrate: a publisher above the limit is cut with ErrBitrate. The
// meter runs on a fake clock that advances 50 ms per write, so the test
// feeds 3 s of media in no time and does not depend on the machine's speed.
func TestMaxBitrate(t *testing.T) {
	cases := []struct {
		name    string
		limit   int64
		perTick int // bytes per 50 ms
		wantCut bool
	}{
		{"3 Mbit/s over a 1 Mbit/s limit", 1_000_000, 3_000_000 / 8 / 20, true},
		{"0.5 Mbit/s under a 1 Mbit/s limit", 1_000_000, 500_000 / 8 / 20, false},
		{"just under the limit", 1_000_000, 950_000 / 8 / 20, false},
		{"just over the limit", 1_000_000, 1_100_000 / 8 / 20, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := time.Unix(1_700_000_000, 0)
			h := newHub(t, func(c *media.HubConfig) {
				c.MaxBitrate = tc.limit
				c.BitrateWindow = time.Second
				c.Clock = func() time.Time { return now } // only this goroutine writes
			})
			p := publish(t, h, "live/br")
			body := make([]byte, tc.perTick)
			body[0] = 0x27
			var err error
			ts := int64(0)
			// 3 whole seconds are always enough for one complete second
			// to be measured.
			for ; ts < 3000 && err == nil; ts += 50 {
				err = p.Write(&unit.Packet{Kind: unit.KindVideo, Time: ts, Payload: body})
				now = now.Add(50 * time.Millisecond)
			}
			if tc.wantCut && !errors.Is(err, media.ErrBitrate) {
				t.Fatalf("publisher not cut: %v", err)
			}
			if !tc.wantCut && err != nil {
				t.Fatalf("publisher under the limit cut: %v", err)
			}
			if tc.wantCut {
				if err2 := p.Write(inter(ts)); !errors.Is(err2, media.ErrBitrate) {
					t.Errorf("write after the cut: %v, want ErrBitrate again", err2)
				}
			}
		})
	}
}

// TestSubscribeWait: Subscribe waits for a publisher for at most Wait.
func TestSubscribeWait(t *testing.T) {
	t.Run("publisher appears during the wait", func(t *testing.T) {
		// OnMissing fires once the subscriber waits: publishing after it
		// makes the test take the waiting path, not the found-at-once one
		waiting := make(chan string, 1)
		h := newHub(t, func(c *media.HubConfig) { c.OnMissing = func(key string) { waiting <- key } })
		type res struct {
			r   *media.Reader
			err error
		}
		ch := make(chan res, 1)
		go func() {
			r, err := h.Subscribe(context.Background(), "live/w", media.SubscribeOptions{Wait: 30 * time.Second})
			ch <- res{r, err}
		}()
		select {
		case k := <-waiting:
			if k != "live/w" {
				t.Fatalf("OnMissing(%q), want live/w", k)
			}
		case got := <-ch:
			t.Fatalf("Subscribe returned before any publisher: %v", got.err)
		}
		p := publish(t, h, "live/w")
		k := key(0)
		write(t, p, k)
		got := <-ch
		if got.err != nil {
			t.Fatal(got.err)
		}
		defer got.r.Close()
		pk, err := next(got.r, 8)
		if err != nil || len(pk) == 0 || pk[0] != k {
			t.Fatalf("waited reader got %v, %v", describe(pk), err)
		}
	})
	for _, tc := range []struct {
		name string
		wait time.Duration
	}{{"no wait", 0}, {"wait expires", 100 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t, nil)
			publish(t, h, "live/other")
			_, err := h.Subscribe(context.Background(), "live/w", media.SubscribeOptions{Wait: tc.wait})
			if !errors.Is(err, media.ErrNoStream) {
				t.Fatalf("err = %v, want ErrNoStream", err)
			}
		})
	}
	t.Run("context canceled", func(t *testing.T) {
		h := newHub(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.Subscribe(ctx, "live/w", media.SubscribeOptions{Wait: time.Minute})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// TestHubClose: readers get what was written, then ErrStreamEnded;
// publishers and new clients are refused.
func TestHubClose(t *testing.T) {
	h := newHub(t, nil)
	p := publish(t, h, "live/c")
	want := []*unit.Packet{meta(0), vhdr(0), key(0), inter(40), inter(80), audio(85)}
	write(t, p, want...)
	r := subscribe(t, h, "live/c")
	h.Close()
	var got []*unit.Packet
	var err error
	for err == nil {
		var pk []*unit.Packet
		pk, err = next(r, 2)
		got = append(got, pk...)
	}
	if !errors.Is(err, media.ErrStreamEnded) {
		t.Fatalf("reader after Close: %v, want ErrStreamEnded", err)
	}
	samePackets(t, "before the end", got, want)
	if err := p.Write(inter(120)); !errors.Is(err, media.ErrHubClosed) {
		t.Errorf("publisher write after Close: %v, want ErrHubClosed", err)
	}
	if _, err := h.Publish("live/new", media.PublisherInfo{}); !errors.Is(err, media.ErrHubClosed) {
		t.Errorf("Publish after Close: %v, want ErrHubClosed", err)
	}
	if _, err := h.Subscribe(context.Background(), "live/c", media.SubscribeOptions{}); !errors.Is(err, media.ErrHubClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrHubClosed", err)
	}
	h.Close() // idempotent
}

func TestCheckKey(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	long[3] = '/'
	cases := []struct {
		key string
		ok  bool
	}{
		{"live/stream", true},
		{"live/cam-1_hd.v2", true},
		{"app/sub/name", true},
		{"live", false},
		{"/name", false},
		{"live/", false},
		{"", false},
		{"live/a b", false},
		{"live/a?token=x", false},
		{"live/a#frag", false},
		{"live/a%20", false},
		{"live/a\\b", false},
		{"live/caf\u00e9", false},
		{"live/a\x00", false},
		{"live/../etc", false},
		{"live/a/../../b", false},
		{string(long), false},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			err := media.CheckKey(tc.key)
			if tc.ok && err != nil {
				t.Fatalf("CheckKey(%q) = %v, want ok", tc.key, err)
			}
			if !tc.ok && !errors.Is(err, media.ErrBadStreamKey) {
				t.Fatalf("CheckKey(%q) = %v, want ErrBadStreamKey", tc.key, err)
			}
		})
	}
}

// TestConcurrentReaders runs a writer and several readers at once (meant
// for -race): every reader sees packets in write order.
func TestConcurrentReaders(t *testing.T) {
	h := newHub(t, func(c *media.HubConfig) { c.RingPackets = 256 })
	p := publish(t, h, "live/race")
	write(t, p, meta(0), vhdr(0), ahdr(0))
	const readers, packets = 4, 5000
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		r := subscribe(t, h, "live/race")
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lastSeq uint64
			var lastT int64 = -1
			buf := make([]*unit.Packet, 0, 32)
			for {
				pk, err := r.Next(context.Background(), buf)
				for _, x := range pk {
					if x.Header {
						continue
					}
					if x.Seq() <= lastSeq && lastSeq != 0 || x.Time < lastT {
						errs <- errors.New("out of order: " + describe([]*unit.Packet{x})[0])
						return
					}
					lastSeq, lastT = x.Seq(), x.Time
					_, _ = x.AppendRTMP(nil, nil)
					_, _ = x.AppendFLV(nil, nil)
				}
				if err != nil {
					if !errors.Is(err, media.ErrStreamEnded) && !errors.Is(err, media.ErrSlowReader) {
						errs <- err
					}
					return
				}
			}
		}()
	}
	for i := range packets {
		ts := int64(i) * 20
		pk := audio(ts)
		switch {
		case i%50 == 0:
			pk = key(ts)
		case i%2 == 0:
			pk = inter(ts)
		}
		if err := p.Write(pk); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			_ = h.Stream("live/race").Codecs()
			_ = h.Stream("live/race").Meter.Rates()
		}
	}
	h.Close()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTakeoverWhileWriting takes a stream over while the first publisher
// is in the middle of writing, as two RTMP connections do (meant for -race).
func TestTakeoverWhileWriting(t *testing.T) {
	h := newHub(t, func(c *media.HubConfig) { c.Takeover = true })
	p1 := publish(t, h, "live/tk")
	r := subscribe(t, h, "live/tk")
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		for i := 0; ; i++ {
			if err := p1.Write(inter(int64(i) * 40)); err != nil {
				done <- err
				return
			}
		}
	}()
	<-started
	p2 := publish(t, h, "live/tk")
	if err := <-done; !errors.Is(err, media.ErrTakenOver) {
		t.Fatalf("first publisher: %v, want ErrTakenOver", err)
	}
	k := key(0)
	write(t, p2, k)
	got, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	if body := media1(got); len(body) == 0 || body[len(body)-1] != k {
		t.Fatalf("reader after takeover did not get the new keyframe last: %v", describe(got[max(0, len(got)-4):]))
	}
}

// A takeover racing the old publisher's own Close must count that
// publisher out once: the count matches the live publishers after every
// round and max_publishers still holds.
func TestTakeoverRacingClose(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Minute} {
		t.Run("grace="+grace.String(), func(t *testing.T) {
			h := newHub(t, func(c *media.HubConfig) {
				c.Takeover, c.MaxPublishers, c.ReconnectGrace = true, 1, grace
			})
			old := publish(t, h, "live/race")
			for i := range 500 {
				var wg sync.WaitGroup
				var next *media.Publisher
				var err error
				wg.Go(func() { old.Close() })
				wg.Go(func() { next, err = h.Publish("live/race", media.PublisherInfo{Protocol: "test"}) })
				wg.Wait()
				if err != nil {
					t.Fatalf("round %d: takeover refused: %v", i, err)
				}
				if n := h.PublisherCount(); n != 1 {
					t.Fatalf("round %d: publisher count %d with one live publisher", i, n)
				}
				old = next
			}
			if p, err := h.Publish("live/other", media.PublisherInfo{Protocol: "test"}); !errors.Is(err, media.ErrTooManyPubs) {
				if p != nil {
					p.Close()
				}
				t.Fatalf("second stream with max_publishers 1: %v, want ErrTooManyPubs", err)
			}
			old.Close()
			if n := h.PublisherCount(); n != 0 {
				t.Fatalf("publisher count %d after the last Close", n)
			}
		})
	}
}

// TestRingBySize: a stream keeps the newest GOP and RingSlack bytes before
// it, not a packet count: a reader further behind skips to the newest
// keyframe even though the packets would fit the ring's slots, one a few
// packets behind keeps them, and a GOP over RingBytes is not cached.
func TestRingBySize(t *testing.T) {
	big := func(ts int64, keyframe bool) *unit.Packet { return videoFrame(ts, keyframe, 10<<10) }
	// gop writes one GOP of n 10 KiB frames from t0 and returns its key.
	gop := func(t *testing.T, p *media.Publisher, t0 int64, n int) *unit.Packet {
		k := big(t0, true)
		write(t, p, k)
		for i := 1; i < n; i++ {
			write(t, p, big(t0+int64(i)*40, false))
		}
		return k
	}
	sized := func(slack, bytes int64) func(*media.HubConfig) {
		return func(c *media.HubConfig) { c.RingPackets, c.RingSlack, c.RingBytes = 4096, slack, bytes }
	}
	timed := func(slack int64, slackTime time.Duration) func(*media.HubConfig) {
		return func(c *media.HubConfig) {
			c.RingPackets, c.RingSlack, c.RingBytes, c.RingSlackTime = 4096, slack, 32<<20, slackTime
		}
	}

	t.Run("a reader behind more than the slack skips to the newest GOP", func(t *testing.T) {
		h := newHub(t, sized(64<<10, 32<<20))
		p := publish(t, h, "live/size")
		write(t, p, vhdr(0))
		behind := subscribe(t, h, "live/size")
		if _, err := next(behind, 64); err != nil { // the header
			t.Fatal(err)
		}
		var last *unit.Packet
		for g := range 5 { // 150 packets: 1024 slots would have kept them all
			last = gop(t, p, int64(g)*1200, 30)
		}
		got, err := drain(behind)
		if err != nil {
			t.Fatal(err)
		}
		if body := media1(got); len(body) != 30 || body[0] != last || behind.Skipped() == 0 {
			t.Fatalf("reader 5 GOPs behind got %d media packets (first %v), skipped %d; want the newest GOP of 30 after a skip",
				len(body), describe(body[:min(1, len(body))]), behind.Skipped())
		}
		fresh := subscribe(t, h, "live/size")
		got, err = drain(fresh)
		if err != nil {
			t.Fatal(err)
		}
		if body := media1(got); len(body) != 30 || body[0] != last {
			t.Fatalf("new reader got %d media packets, want the newest GOP of 30 from its keyframe", len(body))
		}
	})

	// the reader is two frames (80 ms, 20 KiB) behind when the keyframe
	// comes
	for _, tc := range []struct {
		name      string
		slack     int64
		slackTime time.Duration
		skip      bool
	}{
		{"a reader two frames behind a keyframe keeps them with the slack", 64 << 10, 0, false},
		{"and skips without it", -1, 0, true},
		{"and skips when the frames are older than the slack time before the keyframe", 64 << 10, 50 * time.Millisecond, true},
		{"and keeps them within the slack time", 64 << 10, 300 * time.Millisecond, false},
		{"and skips when they are over the slack bytes, within the slack time", 10 << 10, 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHub(t, timed(tc.slack, tc.slackTime))
			p := publish(t, h, "live/slack")
			write(t, p, vhdr(0))
			gop(t, p, 0, 28)
			r := subscribe(t, h, "live/slack")
			if _, err := drain(r); err != nil {
				t.Fatal(err)
			}
			write(t, p, big(28*40, false), big(29*40, false))
			gop(t, p, 1200, 5)
			got, err := drain(r)
			if err != nil {
				t.Fatal(err)
			}
			body := media1(got)
			if skipped := r.Skipped() > 0; skipped != tc.skip || (!tc.skip && len(body) != 7) {
				t.Fatalf("got %d media packets, skipped %d; want skipping %v", len(body), r.Skipped(), tc.skip)
			}
		})
	}

	t.Run("a GOP over RingBytes is not cached: new readers wait for the next keyframe", func(t *testing.T) {
		h := newHub(t, sized(-1, 100<<10))
		p := publish(t, h, "live/huge")
		write(t, p, vhdr(0))
		gop(t, p, 0, 30) // 300 KiB
		r := subscribe(t, h, "live/huge")
		got, err := drain(r)
		if err != nil {
			t.Fatal(err)
		}
		if body := media1(got); len(body) != 0 {
			t.Fatalf("new reader got %d media packets of a GOP over RingBytes, want none yet", len(body))
		}
		k := big(1200, true)
		write(t, p, k)
		got, err = drain(r)
		if err != nil {
			t.Fatal(err)
		}
		if body := media1(got); len(body) != 1 || body[0] != k {
			t.Fatalf("after the next keyframe got %v, want it", describe(body))
		}
	})
}

// TestClockJumpBackRebased: a publisher whose timestamps jump back within
// one session (a pulled copy of a stream taken over upstream by another
// encoder) stays on one monotonic timeline for readers.
func TestClockJumpBackRebased(t *testing.T) {
	h := newHub(t, nil)
	p := publish(t, h, "live/jump")
	r := subscribe(t, h, "live/jump")
	write(t, p, vhdr(0), ahdr(0), key(9000))
	for ts := int64(9040); ts < 9400; ts += 40 {
		write(t, p, inter(ts), audio(ts+5))
	}
	got, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	// the upstream's new encoder starts again near 0; a little audio
	// behind the video stays as it is
	write(t, p, audio(9300), key(20))
	for ts := int64(60); ts < 400; ts += 40 {
		write(t, p, inter(ts), audio(ts+5))
	}
	more, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, more...)
	prev := int64(-1)
	n := 0
	for _, pk := range media1(got) {
		if pk.Kind != unit.KindVideo {
			continue
		}
		n++
		if pk.Time <= prev {
			t.Fatalf("video time went from %d to %d", prev, pk.Time)
		}
		prev = pk.Time
	}
	if n != 20 {
		t.Errorf("reader got %d video frames, want 20: %v", n, describe(got))
	}
}

// TestContinuingSessionDropsDelivered: a session marked Continues (a
// center's pull moved to another copy of the same upstream) that starts
// at an earlier keyframe neither repeats what the reader got nor makes it
// wait for a keyframe: it goes on with the next new frame.
func TestContinuingSessionDropsDelivered(t *testing.T) {
	h := newHub(t, func(c *media.HubConfig) { c.Takeover = true })
	p1 := publish(t, h, "live/cont")
	r := subscribe(t, h, "live/cont")
	write(t, p1, vhdr(0), ahdr(0), key(1000))
	for ts := int64(1040); ts <= 1400; ts += 40 {
		write(t, p1, inter(ts), audio(ts+5))
	}
	got, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := h.Publish("live/cont", media.PublisherInfo{Protocol: "srt-pull", Takeover: true, Continues: true})
	if err != nil {
		t.Fatal(err)
	}
	// the new copy starts at the GOP's keyframe, behind what was delivered
	write(t, p2, vhdr(0), ahdr(0), key(1000))
	for ts := int64(1040); ts <= 1800; ts += 40 {
		write(t, p2, inter(ts), audio(ts+5))
	}
	more, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	var vts []int64
	for _, pk := range media1(append(got, more...)) {
		if pk.Kind == unit.KindVideo {
			vts = append(vts, pk.Time)
		}
	}
	want := []int64{}
	for ts := int64(1000); ts <= 1800; ts += 40 {
		want = append(want, ts)
	}
	if !slices.Equal(vts, want) {
		t.Errorf("video times %v, want every frame once: %v", vts, want)
	}
}

// TestContinuingSessionTSOverlap: on the TS lane a continuing session drops
// only the overlap with what the previous session delivered; once past it,
// a group that repeats a time (one without a new DTS) is its own and goes
// to readers, so their TS has no hole.
func TestContinuingSessionTSOverlap(t *testing.T) {
	h := newHub(t, func(c *media.HubConfig) { c.Takeover = true })
	info := media.PublisherInfo{Protocol: "srt-pull", Native: media.FormatTS, Takeover: true}
	group := func(ts int64) *unit.Packet {
		return &unit.Packet{Kind: unit.KindTS, Time: ts, Keyframe: ts%400 == 0, Payload: []byte{0x47, byte(ts), byte(ts >> 8)}}
	}
	psi := &unit.Packet{Kind: unit.KindTS, Header: true, Payload: []byte{0x47, 0, 0}}
	p1, err := h.Publish("live/contts", info)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Subscribe(context.Background(), "live/contts", media.SubscribeOptions{Format: media.FormatTS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	write(t, p1, psi)
	for ts := int64(1200); ts <= 1400; ts += 40 {
		write(t, p1, group(ts))
	}
	got, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	info.Continues = true
	p2, err := h.Publish("live/contts", info)
	if err != nil {
		t.Fatal(err)
	}
	write(t, p2, psi)
	for ts := int64(1200); ts <= 1600; ts += 40 { // from the GOP's start, behind what was delivered
		write(t, p2, group(ts))
	}
	write(t, p2, group(1600), group(1640)) // 1600 again: a group without a new DTS
	more, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	var times []int64
	for _, pk := range media1(append(got, more...)) {
		times = append(times, pk.Time)
	}
	var want []int64
	for ts := int64(1200); ts <= 1600; ts += 40 {
		want = append(want, ts)
	}
	want = append(want, 1600, 1640)
	if !slices.Equal(times, want) {
		t.Errorf("TS group times %v, want the overlap dropped and nothing dropped after it: %v", times, want)
	}
}

// TestContinuingSessionKeepsOwnFrames: past the overlap, a frame of a
// continuing session that repeats its track's last time is its own, not
// one the previous session delivered: it is kept (moved 1 ms on, as in
// any session) instead of dropped, which would break decoding until the
// next keyframe.
func TestContinuingSessionKeepsOwnFrames(t *testing.T) {
	h := newHub(t, func(c *media.HubConfig) { c.Takeover = true })
	p1 := publish(t, h, "live/contown")
	r := subscribe(t, h, "live/contown")
	write(t, p1, vhdr(0), key(1000), inter(1040))
	got, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := h.Publish("live/contown", media.PublisherInfo{Protocol: "srt-pull", Takeover: true, Continues: true})
	if err != nil {
		t.Fatal(err)
	}
	write(t, p2, vhdr(0), key(1000), inter(1040), inter(1080), inter(1080), inter(1120))
	more, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	var vts []int64
	for _, pk := range media1(append(got, more...)) {
		if pk.Kind == unit.KindVideo {
			vts = append(vts, pk.Time)
		}
	}
	if want := []int64{1000, 1040, 1080, 1081, 1120}; !slices.Equal(vts, want) {
		t.Errorf("video times %v, want %v", vts, want)
	}
}

// TestPhantomNeverRead: a TS-native publisher's phantom video frames
// (unit.Phantom: a demuxer's frames while no FLV reader exists) count in
// the stream's meter like the real ones, move its timeline, and never
// reach an FLV reader, also while one is attached; WantsFLV says whether
// FLV packets are read (a lazy FLV lane: only with an FLV reader).
func TestPhantomNeverRead(t *testing.T) {
	h := newHub(t, nil)
	p, err := h.Publish("live/phantom", media.PublisherInfo{Protocol: "srt", Native: media.FormatTS})
	if err != nil {
		t.Fatal(err)
	}
	phantom := func(ts int64, keyframe bool, n int) *unit.Packet {
		return &unit.Packet{Kind: unit.KindVideo, Time: ts, Keyframe: keyframe, Payload: unit.Phantom(n)}
	}
	if p.WantsFLV() {
		t.Fatal("a TS-native publisher without FLV readers wants FLV")
	}
	write(t, p, meta(0), vhdr(0), ahdr(0), phantom(0, true, 1000), phantom(40, false, 500), audio(50))
	s := h.Stream("live/phantom")
	if r := s.Meter.Rates(); r.Frames != 2 || r.BytesIn < 1500 {
		t.Fatalf("meter after two phantom frames: %d frames, %d bytes in; want 2 and at least 1500", r.Frames, r.BytesIn)
	}
	r, err := h.Subscribe(context.Background(), "live/phantom", media.SubscribeOptions{Format: media.FormatFLV})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if !p.WantsFLV() {
		t.Fatal("a publisher with an FLV reader does not want FLV")
	}
	// the reader starts at the next keyframe (no TS-lane GOP to rebuild)
	write(t, p, phantom(80, false, 700), key(120), phantom(160, false, 300), inter(200))
	got, err := drain(r)
	if err != nil {
		t.Fatal(err)
	}
	var times []int64
	for _, pk := range got {
		if unit.IsPhantom(pk.Payload) {
			t.Fatalf("a reader got a phantom payload at %d", pk.Time)
		}
		if pk.Kind == unit.KindVideo && !pk.Header {
			times = append(times, pk.Time)
		}
	}
	if !slices.Equal(times, []int64{120, 200}) {
		t.Errorf("video frames read %v, want the two real ones, 120 and 200", times)
	}
	if fr := s.Meter.Rates().Frames; fr != 6 {
		t.Errorf("meter: %d frames, want 6 (phantoms counted)", fr)
	}
}
