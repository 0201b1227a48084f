package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
)

// badFrame is one malformed thing a WHIP publisher sends, and the drop
// total it must raise.
type badFrame struct {
	name   string
	key    bool // into a keyframe (else a P frame)
	reason string
	// edit turns the frame's packets (timestamp ts) into what is sent
	edit func(pkts []*rtp.Packet, ts uint32) []*rtp.Packet
}

// hugeFUA is one FU-A NAL unit (a P slice) of n bytes in 1400-byte
// fragments: past the node's 4 MiB bound on an access unit when n is.
func hugeFUA(ts uint32, n int) []*rtp.Packet {
	var out []*rtp.Packet
	for off := 0; off < n; off += 1400 {
		hdr := byte(0x01)
		switch {
		case off == 0:
			hdr |= 0x80 // start
		case off+1400 >= n:
			hdr |= 0x40 // end
		}
		p := make([]byte, 2+min(1400, n-off))
		p[0], p[1] = 0x7c, hdr // FU-A, NRI 3
		for i := 2; i < len(p); i++ {
			p[i] = 0x55
		}
		out = append(out, &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: ts}, Payload: p})
	}
	out[len(out)-1].Marker = true
	return out
}

var badFrames = []badFrame{
	{"unknown payload type 96 before a P frame", false, "payload_type", func(pkts []*rtp.Packet, ts uint32) []*rtp.Packet {
		bad := &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: ts}, Payload: webrtcpeer.WithPT(96, 0x41, 0x9a, 1, 2)}
		return append([]*rtp.Packet{bad}, pkts...)
	}},
	{"truncated FU-A (its header only) inside a keyframe", true, "broken_frame", func(pkts []*rtp.Packet, ts uint32) []*rtp.Packet {
		bad := &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: ts}, Payload: []byte{0x7c}}
		return append(pkts[:1:1], append([]*rtp.Packet{bad}, pkts[1:]...)...)
	}},
	{"a 4.5 MiB FU-A instead of a P frame", false, "broken_frame", func(_ []*rtp.Packet, ts uint32) []*rtp.Packet {
		return hugeFUA(ts, 4<<20+512<<10)
	}},
}

// TestWHIPBadRTPThroughAgent: a pion WHIP publisher to the real binary
// sends good H.264 and, one at a time on the live session, an RTP packet
// of an unknown payload type, a truncated FU-A and an access unit past
// the node's size bound. Each raises
// relaymesh_webrtc_ingest_dropped_total{track="video",reason=...} on
// /metrics while the session lives (the publisher is still the WHIP
// session in /v1/streams); an RTMP player reading across them gets
// frames that decode without errors, and one after them a clean stream.
// (That the size bound alone drops the huge frame is
// TestH264AssemblerMutations' "FU-A past maxFrameBytes": here the
// burst's packets may also be lost on loopback, which breaks the frame
// as well. The huge frame stalls the publisher for about a second, so
// the gap the player sees is not bounded here.)
func TestWHIPBadRTPThroughAgent(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	key := "live/badwhip"
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	pc := webrtcpeer.NewWith(t, &webrtcpeer.PTSwitch{})
	track := webrtcpeer.H264RTPTrack(t, pc)
	const gop = 25
	src := webrtcpeer.H264File(t, 120, gop)
	loc := webrtcpeer.Connect(t, pc, base+"/"+key+"/whip")

	// the publisher takes one bad frame at a time from inject and sends
	// it into the next frame of its kind
	inject := make(chan badFrame)
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	go func() {
		pz := rtp.NewPacketizer(1100, 102, 1, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
		var seq uint16
		var pending *badFrame
		frame := 0
		webrtcpeer.AccessUnits(ctx, t, src, func(au []byte) error {
			ts := uint32(frame * 3600)
			isKey := frame%gop == 0
			frame++
			pkts := pz.Packetize(au, 3600)
			if pending == nil {
				select {
				case b := <-inject:
					pending = &b
				default:
				}
			}
			if pending != nil && pending.key == isKey {
				pkts = pending.edit(pkts, ts)
				pending = nil
			}
			for i, p := range pkts {
				p.Timestamp, p.SequenceNumber = ts, seq
				seq++
				if err := track.WriteRTP(p); err != nil {
					return err
				}
				if i%4 == 3 {
					time.Sleep(time.Millisecond) // paced as a sender's pacer would: loopback UDP drops bursts of MBs
				}
			}
			return nil
		})
	}()
	waitStreams(t, a, "the WHIP publisher live with H264", func(sr streamsResp) bool {
		return len(sr.Streams) == 1 && sr.Streams[0].Video == "H264"
	})

	drops := func(reason string) float64 {
		mfs, err := promtest.TryScrape(a.api("/metrics"))
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		v, ok := promtest.Value(mfs, "relaymesh_webrtc_ingest_dropped_total", map[string]string{"track": "video", "reason": reason})
		if !ok {
			t.Fatalf("no relaymesh_webrtc_ingest_dropped_total{track=\"video\",reason=%q} in /metrics", reason)
		}
		return v
	}
	across := make(chan struct {
		res testmedia.Result
		err error
	}, 1)
	go func() {
		res, err := testmedia.Read(t.Context(), a.rtmp(key), 15*time.Second)
		across <- struct {
			res testmedia.Result
			err error
		}{res, err}
	}()
	waitStreams(t, a, "the RTMP player attached", func(sr streamsResp) bool {
		return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1
	})
	for _, b := range badFrames {
		before := drops(b.reason)
		select {
		case inject <- b:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the publisher took nothing within 30 s", b.name)
		}
		testmedia.Eventually(t, 30*time.Second, b.name+": "+b.reason+" counted on /metrics", func() bool {
			return drops(b.reason) > before
		})
		sr := waitStreams(t, a, "the stream still up", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
		if p := sr.Streams[0].Publisher; p == nil || p.Protocol != "whip" {
			t.Fatalf("after %s the publisher is %+v, want the WHIP session", b.name, p)
		}
		t.Logf("%s: %s %v -> %v", b.name, b.reason, before, drops(b.reason))
	}
	t.Logf("packets lost (of the huge frame's burst): %v", drops("lost"))
	r := <-across
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("RTMP across the bad frames: %+v", r.res)
	// each costs at most its GOP (a broken frame waits for the next
	// keyframe): most of the 15 s of video is there
	if r.res.VideoCodec != "h264" || r.res.DecodeErrors != "" || r.res.NonMonotonic != 0 || !r.res.FirstKey ||
		r.res.VideoFrames < 8*gop {
		t.Errorf("RTMP across the bad frames: %+v", r.res)
	}
	res, err := testmedia.Read(t.Context(), a.rtmp(key), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RTMP after them: %+v", res)
	if res.DecodeErrors != "" || res.NonMonotonic != 0 || res.VideoFrames < 60 || res.MaxVideoStep > 50*time.Millisecond {
		t.Errorf("RTMP after the bad frames: %+v", res)
	}
	if st, body := webrtcpeer.Do(t, http.MethodDelete, base+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
}
