package mpegts

import (
	"bytes"
	"testing"

	"github.com/relaymesh/relaymesh/media/unit"
)

// TestWantFLV: with SetWantFLV answering no, the demuxer emits the same
// packets in the same order as without it (times, flags, sizes, every TS
// packet byte for byte), but each video frame held for its TS group has
// a phantom payload of its body's size; audio, headers and metadata stay
// real. The answer is asked once per video frame, after its TS group was
// emitted, so a frame whose group was out when FLV became wanted has its
// real body.
func TestWantFLV(t *testing.T) {
	for _, file := range []string{"h264_aac.ts", "h265_aac.ts"} {
		in := readFile(t, file)
		ref := demuxAll(t, in, 1316)
		for _, tc := range []struct {
			name string
			// want answers the i-th question (counted from 0); real says
			// whether the i-th held video frame must have its body
			want func(i int) bool
		}{
			{"never", func(int) bool { return false }},
			{"always", func(int) bool { return true }},
			{"from the 10th frame on", func(i int) bool { return i >= 10 }},
			{"off again after 20", func(i int) bool { return i >= 10 && i < 20 }},
		} {
			t.Run(file+"/"+tc.name, func(t *testing.T) {
				var out demuxed
				asked := 0
				tsOut := 0
				// the TS group of the frame asked about is out: at least
				// one more TS packet emitted than at the last question
				lastTS := -1
				dm := NewDemuxer()
				dm.SetWantFLV(func() bool {
					if len(out.ts) == tsOut && lastTS >= 0 {
						t.Errorf("question %d asked before the frame's TS group was emitted", asked)
					}
					tsOut, lastTS = len(out.ts), len(out.ts)
					asked++
					return tc.want(asked - 1)
				})
				if err := feedChunks(dm, in, 1316, out.emit); err != nil {
					t.Fatal(err)
				}
				if err := dm.Flush(out.emit); err != nil {
					t.Fatal(err)
				}
				if len(out.ts) != len(ref.ts) || len(out.flv) != len(ref.flv) {
					t.Fatalf("%d TS and %d FLV packets, want %d and %d", len(out.ts), len(out.flv), len(ref.ts), len(ref.flv))
				}
				for i, p := range out.ts {
					if !bytes.Equal(p.Payload, ref.ts[i].Payload) || p.Keyframe != ref.ts[i].Keyframe || p.Time != ref.ts[i].Time {
						t.Fatalf("TS packet %d differs", i)
					}
				}
				q, phantoms := 0, 0
				for i, p := range out.flv {
					r := ref.flv[i]
					if p.Kind != r.Kind || p.Time != r.Time || p.Keyframe != r.Keyframe || p.Header != r.Header || len(p.Payload) != len(r.Payload) {
						t.Fatalf("FLV packet %d: %v %d key %v header %v %d bytes, want %v %d key %v header %v %d bytes", i,
							p.Kind, p.Time, p.Keyframe, p.Header, len(p.Payload), r.Kind, r.Time, r.Keyframe, r.Header, len(r.Payload))
					}
					if !unit.IsPhantom(p.Payload) {
						if !bytes.Equal(p.Payload, r.Payload) {
							t.Fatalf("FLV packet %d: real body differs", i)
						}
						if p.Kind == unit.KindVideo && !p.Header && q < asked && !tc.want(q) {
							t.Fatalf("video frame %d (question %d answered no) has its body", i, q)
						}
					} else {
						phantoms++
						if p.Kind != unit.KindVideo || p.Header || tc.want(q) {
							t.Fatalf("FLV packet %d (%v, header %v, question %d) is a phantom", i, p.Kind, p.Header, q)
						}
					}
					if p.Kind == unit.KindVideo && !p.Header && q < asked {
						q++
					}
				}
				if asked == 0 {
					t.Fatal("never asked")
				}
				t.Logf("%d questions, %d phantoms of %d video frames", asked, phantoms, ref.count(unit.KindVideo, false))
			})
		}
	}
}
