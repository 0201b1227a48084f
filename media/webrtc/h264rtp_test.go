package webrtc

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

// testPkt is one RTP packet for the assembler.
type testPkt struct {
	seq      uint16
	ts       uint32
	marker   bool
	payload  []byte
	rejected bool
	at       time.Duration // arrival after the first packet
}

// testGOPs packetizes frames of 3000 ticks: a keyframe every gop frames
// (STAP-A with SPS and PPS, then the IDR in three FU-A fragments), the
// others one single-NAL packet each; frame i arrives at i*40 ms.
func testGOPs(frames, gop int) []testPkt {
	var out []testPkt
	seq := uint16(65000) // wraps inside the test
	for i := range frames {
		ts := uint32(i * 3000)
		at := time.Duration(i) * 40 * time.Millisecond
		add := func(marker bool, p []byte) {
			out = append(out, testPkt{seq: seq, ts: ts, marker: marker, payload: p, at: at})
			seq++
		}
		if i%gop == 0 {
			stap := []byte{24, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 0, 2, 0x68, 0xce}
			add(false, stap)
			add(false, []byte{0x7c, 0x85, 1, 2, 3})
			add(false, []byte{0x7c, 0x05, 4, 5, 6})
			add(true, []byte{0x7c, 0x45, 7, 8, byte(i)})
			continue
		}
		add(true, []byte{0x41, 0x9a, byte(i)})
	}
	return out
}

// run feeds pkts and returns the emitted frames' timestamps (in frames
// of 3000) and the drops.
func run(t *testing.T, pkts []testPkt) ([]int, [numDrops]uint64) {
	t.Helper()
	var got []int
	t0 := time.Unix(0, 0)
	a := newH264Assembler(200*time.Millisecond, func(au []byte, ts uint32, _ time.Time) error {
		// every emitted frame is whole AVCC
		for b := au; len(b) > 0; {
			if len(b) < 5 {
				t.Fatalf("frame %d: %d trailing bytes", ts/3000, len(b))
			}
			n := int(binary.BigEndian.Uint32(b))
			if n == 0 || n > len(b)-4 || b[4]&0x80 != 0 {
				t.Fatalf("frame %d: bad NAL length %d of %d", ts/3000, n, len(b)-4)
			}
			b = b[4+n:]
		}
		got = append(got, int(ts/3000))
		return nil
	})
	for _, p := range pkts {
		if err := a.push(p.seq, p.ts, p.marker, p.payload, p.rejected, t0.Add(p.at)); err != nil {
			t.Fatal(err)
		}
	}
	return got, a.drops
}

func frameRange(from, to int) []int {
	var r []int
	for i := from; i < to; i++ {
		r = append(r, i)
	}
	return r
}

// TestH264AssemblerMutations: each mutation of a clean 30-frame stream
// (keyframe every 10) costs only the bad packet, or the frame it breaks
// and the frames after it up to the next keyframe; what follows is
// emitted. The frame under test is frame 13 (packet index 4+12 = 16 in
// the second GOP; frames 10..19 form it).
func TestH264AssemblerMutations(t *testing.T) {
	clean := testGOPs(30, 10)
	idx := func(frame int) int { // first packet of a frame
		for i, p := range clean {
			if int(p.ts/3000) == frame {
				return i
			}
		}
		t.Fatalf("no frame %d", frame)
		return 0
	}
	all := frameRange(0, 30)
	lostGOP := append(frameRange(0, 13), frameRange(20, 30)...) // 13..19 dropped
	lostKeyGOP := append(frameRange(0, 10), frameRange(20, 30)...)
	type mut func([]testPkt) []testPkt
	// insert puts p before packet i, renumbering what follows
	insert := func(i int, p testPkt) mut {
		return func(ps []testPkt) []testPkt {
			p.seq, p.at = ps[i].seq, ps[i].at
			ps = slices.Insert(ps, i, p)
			for j := i + 1; j < len(ps); j++ {
				ps[j].seq++
			}
			return ps
		}
	}
	set := func(i int, f func(*testPkt)) mut {
		return func(ps []testPkt) []testPkt { f(&ps[i]); return ps }
	}
	// huge puts a 4.5 MiB FU-A P slice (past maxFrameBytes) in place
	// of frame 13's packet, renumbering what follows
	huge := func(ps []testPkt) []testPkt {
		i, n := idx(13), (4<<20+512<<10)/1400
		p := ps[i]
		frag := make([]testPkt, n)
		for j := range frag {
			hdr := byte(0x01)
			if j == 0 {
				hdr |= 0x80
			} else if j == n-1 {
				hdr |= 0x40
			}
			frag[j] = testPkt{seq: p.seq + uint16(j), ts: p.ts, marker: j == n-1, payload: append([]byte{0x7c, hdr}, make([]byte, 1400)...), at: p.at}
		}
		ps = slices.Replace(ps, i, i+1, frag...)
		for j := i + n; j < len(ps); j++ {
			ps[j].seq += uint16(n - 1)
		}
		return ps
	}
	k := idx(10) // the second keyframe's STAP-A; k+1..k+3 its FU-A
	cases := []struct {
		name string
		mut  mut
		want []int
		drop int // a reason that must be counted (-1: none)
	}{
		{"clean", func(ps []testPkt) []testPkt { return ps }, all, -1},
		{"refused packet between frames", insert(idx(13), testPkt{ts: 999999, rejected: true}), all, -1},
		{"refused packet inside a frame", insert(k+2, testPkt{ts: 30000, rejected: true}), lostKeyGOP, dropBroken},
		{"empty payload (padding) between frames", insert(idx(13), testPkt{ts: 12 * 3000}), all, -1},
		{"lost packet", func(ps []testPkt) []testPkt { return slices.Delete(ps, idx(13), idx(13)+1) }, lostGOP, dropLost},
		{"lost FU-A middle", func(ps []testPkt) []testPkt { return slices.Delete(ps, k+2, k+3) }, lostKeyGOP, dropLost},
		{"lost marker: the next time ends the frame", set(idx(13), func(p *testPkt) { p.marker = false }), all, -1},
		{"reordered", func(ps []testPkt) []testPkt { ps[k+1], ps[k+2] = ps[k+2], ps[k+1]; return ps }, all, -1},
		{"duplicate", func(ps []testPkt) []testPkt { return slices.Insert(ps, idx(14)+1, ps[idx(14)]) }, all, dropLate},
		{"truncated FU-A", set(k+2, func(p *testPkt) { p.payload = p.payload[:2] }), lostKeyGOP, dropBroken},
		{"FU-A start and end", set(k+2, func(p *testPkt) { p.payload[1] = 0xc5 }), lostKeyGOP, dropBroken},
		{"FU-A start twice", set(k+2, func(p *testPkt) { p.payload[1] = 0x85 }), lostKeyGOP, dropBroken},
		{"FU-A part without a start", set(k+1, func(p *testPkt) { p.payload[1] = 0x05 }), lostKeyGOP, dropBroken},
		{"FU-A of type 0", set(k+1, func(p *testPkt) { p.payload[1] = 0x80 }), lostKeyGOP, dropBroken},
		{"STAP-A size past the end", set(k, func(p *testPkt) { p.payload[2] = 200 }), lostKeyGOP, dropBroken},
		{"STAP-A zero size", set(k, func(p *testPkt) { p.payload[1], p.payload[2] = 0, 0 }), lostKeyGOP, dropBroken},
		{"STAP-A cut", set(k, func(p *testPkt) { p.payload = p.payload[:2] }), lostKeyGOP, dropBroken},
		{"forbidden bit", set(idx(13), func(p *testPkt) { p.payload[0] |= 0x80 }), lostGOP, dropBroken},
		{"NAL type 30", set(idx(13), func(p *testPkt) { p.payload[0] = 0x5e }), lostGOP, dropBroken},
		{"MTAP16", set(idx(13), func(p *testPkt) { p.payload[0] = 0x5a }), lostGOP, dropBroken},
		{"FU-A past maxFrameBytes", huge, lostGOP, dropBroken},
		{"sequence jump ahead", insert(idx(13), testPkt{ts: 13 * 3000, payload: []byte{0x41, 1}}), all, dropStray},
		{"sequence jump back", insert(idx(13), testPkt{ts: 13 * 3000, payload: []byte{0x41, 1}}), all, dropStray},
	}
	// the jumps: the inserted packet's own number is moved far away, so
	// the good packets are not renumbered around it
	jump := func(off uint16) mut {
		return func(ps []testPkt) []testPkt {
			i := idx(13)
			return slices.Insert(ps, i, testPkt{seq: ps[i].seq + off, ts: 13 * 3000, marker: true, payload: []byte{0x41, 1}, at: ps[i].at})
		}
	}
	cases[len(cases)-2].mut = jump(30000)
	cases[len(cases)-1].mut = jump(65536 - 20000)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := c.mut(slices.Clone(testGOPs(30, 10)))
			got, drops := run(t, ps)
			if !slices.Equal(got, c.want) {
				t.Errorf("frames %v\nwant   %v (drops %v)", got, c.want, drops)
			}
			if c.drop >= 0 && drops[c.drop] == 0 {
				t.Errorf("no %s drop counted: %v", dropNames[c.drop], drops)
			}
			if c.drop < 0 && drops != [numDrops]uint64{} {
				t.Errorf("drops %v, want none", drops)
			}
		})
	}
}

// TestH264AssemblerWaitBound: a packet that never comes stalls the frames
// behind it for at most maxWait of arrivals, not for the 512-packet window.
func TestH264AssemblerWaitBound(t *testing.T) {
	ps := testGOPs(60, 10)
	lostAt := 0
	for i, p := range ps {
		if p.ts == 13*3000 {
			lostAt = i
		}
	}
	ps = slices.Delete(ps, lostAt, lostAt+1)
	var emittedAt []time.Duration
	t0 := time.Unix(0, 0)
	var now time.Time
	a := newH264Assembler(200*time.Millisecond, func(au []byte, ts uint32, _ time.Time) error {
		if ts >= 20*3000 {
			emittedAt = append(emittedAt, now.Sub(t0)-time.Duration(ts/3000)*40*time.Millisecond)
		}
		return nil
	})
	for _, p := range ps {
		now = t0.Add(p.at)
		a.push(p.seq, p.ts, p.marker, p.payload, false, now)
	}
	if len(emittedAt) != 40 {
		t.Fatalf("%d frames after the loss emitted, want 40 (drops %v)", len(emittedAt), a.drops)
	}
	// the first keyframe after the loss comes out once the gap is given
	// up: 200 ms after the packets behind it began to wait, which is
	// before frame 20 arrives (frame 14 began waiting at 560 ms)
	for i, d := range emittedAt {
		if d != 0 {
			t.Fatalf("frame %d emitted %s after it arrived", 20+i, d)
		}
	}
	// without more packets, expire alone gives the gap up
	b := newH264Assembler(200*time.Millisecond, func([]byte, uint32, time.Time) error { return nil })
	for i, p := range testGOPs(3, 10) {
		if i == 1 {
			continue
		}
		b.push(p.seq, p.ts, p.marker, p.payload, false, t0)
	}
	if b.held == 0 || b.waiting() != t0.Add(200*time.Millisecond) {
		t.Fatalf("held %d waiting %v", b.held, b.waiting())
	}
	b.expire(t0.Add(200 * time.Millisecond))
	if b.held != 0 || b.drops[dropLost] != 1 {
		t.Fatalf("after expire: held %d drops %v", b.held, b.drops)
	}
}

// TestH264AssemblerResync: a publisher whose sequence numbers jump for
// good is followed after resyncStrays packets, from its next keyframe.
func TestH264AssemblerResync(t *testing.T) {
	ps := testGOPs(40, 10)
	for i := range ps {
		if ps[i].ts >= 15*3000 {
			ps[i].seq += 20000
		}
	}
	got, drops := run(t, ps)
	want := append(frameRange(0, 15), frameRange(20, 40)...)
	if !slices.Equal(got, want) || drops[resyncs] != 1 || drops[dropWaitKey] != 5 {
		t.Fatalf("frames %v\nwant   %v (drops %v)", got, want, drops)
	}
}

// FuzzH264Assembler: any packets give whole AVCC frames or none, never a
// panic.
func FuzzH264Assembler(f *testing.F) {
	for _, p := range testGOPs(12, 5) {
		f.Add(p.seq, p.ts, p.marker, p.payload)
	}
	a := newH264Assembler(200*time.Millisecond, func(au []byte, _ uint32, _ time.Time) error {
		for b := au; len(b) > 0; {
			n := int(binary.BigEndian.Uint32(b))
			if len(b) < 5 || n == 0 || n > len(b)-4 {
				f.Fatalf("bad frame %x", au)
			}
			b = b[4+n:]
		}
		return nil
	})
	t0 := time.Unix(0, 0)
	f.Fuzz(func(t *testing.T, seq uint16, ts uint32, marker bool, payload []byte) {
		t0 = t0.Add(time.Millisecond)
		a.push(seq, ts, marker, payload, false, t0)
	})
}
