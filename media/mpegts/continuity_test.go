package mpegts

import (
	"testing"

	"github.com/relaymesh/relaymesh/media/unit"
)

// TestDemuxContinuityErrors: an ffmpeg-made TS file has no continuity
// errors; each video TS packet taken out of it counts one, a duplicated
// packet none, and a packet after a gap whose adaptation field flags a
// discontinuity (a splice) none. NewCCErrors hands each count on once.
func TestDemuxContinuityErrors(t *testing.T) {
	file := readFile(t, "h264_aac.ts")
	var pkts [][]byte
	for b := file; len(b) >= PacketSize; b = b[PacketSize:] {
		pkts = append(pkts, b[:PacketSize])
	}
	demux := func(in [][]byte) *Demuxer {
		d := NewDemuxer()
		for _, p := range in {
			if err := d.Feed(p, func(*unit.Packet) {}); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	clean := demux(pkts)
	if n := clean.Stats().CCErrors; n != 0 {
		t.Fatalf("the ffmpeg-made file: %d continuity errors, want 0", n)
	}
	if n := clean.NewCCErrors(); n != 0 {
		t.Fatalf("NewCCErrors %d, want 0", n)
	}
	pid := func(p []byte) int { return int(p[1]&0x1f)<<8 | int(p[2]) }
	payload := func(p []byte) bool { return p[3]&0x10 != 0 }
	// video payload packets from the second quarter on, 8 apart
	var video []int
	for i, p := range pkts[len(pkts)/4:] {
		if pid(p) == clean.videoPID && payload(p) {
			video = append(video, len(pkts)/4+i)
		}
	}
	if len(video) < 40 {
		t.Fatalf("%d video packets in the file's last three quarters, want 40 or more", len(video))
	}
	drop := map[int]bool{}
	for k := range 3 {
		drop[video[k*8]] = true
	}
	dup := video[24]
	// a later packet with an adaptation field: the one before it goes, and
	// it flags the discontinuity
	splice := -1
	for _, i := range video[30:] {
		if p := pkts[i]; p[3]&0x20 != 0 && p[4] > 0 && pkts[i-1][3]&0x10 != 0 && pid(pkts[i-1]) == clean.videoPID {
			splice = i
			break
		}
	}
	if splice < 0 {
		t.Fatal("no video packet with an adaptation field after a video packet")
	}
	var in [][]byte
	for i, p := range pkts {
		switch {
		case drop[i] || i == splice-1:
		case i == dup:
			in = append(in, p, p)
		case i == splice:
			q := append([]byte(nil), p...)
			q[5] |= 0x80 // discontinuity_indicator
			in = append(in, q)
		default:
			in = append(in, p)
		}
	}
	d := demux(in)
	if n := d.Stats().CCErrors; n != 3 {
		t.Errorf("3 video packets dropped, one duplicated, one gap flagged: %d continuity errors, want 3", n)
	}
	if n, again := d.NewCCErrors(), d.NewCCErrors(); n != 3 || again != 0 {
		t.Errorf("NewCCErrors %d then %d, want 3 then 0", n, again)
	}
	// without the flag the gap counts
	in = in[:0]
	for i, p := range pkts {
		if i != splice-1 {
			in = append(in, p)
		}
	}
	if n := demux(in).Stats().CCErrors; n != 1 {
		t.Errorf("an unflagged gap: %d continuity errors, want 1", n)
	}
}
