package webrtc_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// badOpus are the bad packets TestWHIPBadAudio sends on the Opus track,
// with the log key each is counted under.
var badOpus = []struct {
	name, reason string
	p            func() *rtp.Packet
}{
	{"unknown payload type", "audio_payload_type", func() *rtp.Packet { return opusPkt(webrtcpeer.WithPT(96, 0xfc, 1, 2, 3)...) }},
	{"the H264 payload type", "audio_payload_type", func() *rtp.Packet { return opusPkt(webrtcpeer.WithPT(102, 0x65, 0x88, 0x84)...) }},
	{"padding longer than the packet", "audio_bad_padding", func() *rtp.Packet {
		p := opusPkt(0xfc, 1, 200)
		p.Padding = true
		return p
	}},
	{"empty", "audio_bad_opus", func() *rtp.Packet { return opusPkt() }},
	{"code 3 with no frames", "audio_bad_opus", func() *rtp.Packet { return opusPkt(0xfb, 0x00) }},
	{"code 3 of 140 ms", "audio_bad_opus", func() *rtp.Packet { return opusPkt(0xfb, 0x07, 1, 2, 3, 4, 5, 6, 7) }},
	{"code 2 frame past the end", "audio_bad_opus", func() *rtp.Packet { return opusPkt(0xfa, 200, 1, 2) }},
	{"code 1 of odd length", "audio_bad_opus", func() *rtp.Packet { return opusPkt(0xf9, 1, 2, 3) }},
}

func opusPkt(payload ...byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}
}

// publishOpusRTP sends an Ogg Opus file's packets at real time as RTP
// packetized here, and before one of them the packets that came on
// inject meanwhile (each taking the next sequence number and the current
// timestamp).
func publishOpusRTP(ctx context.Context, t *testing.T, track *pwebrtc.TrackLocalStaticRTP, path string, inject <-chan []*rtp.Packet) {
	seq, ts := uint16(65000), uint32(0) // the sequence wraps during the test
	send := func(p *rtp.Packet) error {
		p.SequenceNumber, p.Timestamp = seq, ts
		seq++
		return track.WriteRTP(p)
	}
	opusPackets(ctx, t, path, func(page []byte) error {
		select {
		case bad := <-inject:
			for _, p := range bad {
				if err := send(p); err != nil {
					return err
				}
			}
		default:
		}
		ts += 960
		return send(opusPkt(page...))
	})
}

// TestWHIPBadAudio: a WHIP publisher (pion) sends H.264 and Opus, and on
// the Opus track one packet of each kind in badOpus. An RTMP player
// reading across them keeps getting AAC audio (the transcoding used to
// end at a packet of an unknown payload type, and fed ffmpeg a packet of
// H.264's payload type as Opus), without decode errors; the session
// lives on and its drop log and the server's totals count each bad packet
// by reason.
func TestWHIPBadAudio(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	key := "live/badaudio"
	wn := nodeWithLog(t, webrtc.Config{})
	pc := webrtcpeer.NewWith(t, &webrtcpeer.PTSwitch{})
	vtrack, err := pwebrtc.NewTrackLocalStaticSample(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	atrack, err := pwebrtc.NewTrackLocalStaticRTP(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []pwebrtc.TrackLocal{vtrack, atrack} {
		if _, err := pc.AddTransceiverFromTrack(tr, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	src, asrc := h264File(t, 30), opusFile(t, 30)
	loc := webrtcpeer.Connect(t, pc, wn.FLVBase()+"/"+key+"/whip")
	pctx, stop := context.WithCancel(t.Context())
	defer stop()
	inject := make(chan []*rtp.Packet)
	go publishFile(pctx, t, vtrack, src)
	go publishOpusRTP(pctx, t, atrack, asrc, inject)
	testmedia.Eventually(t, 15*time.Second, "stream has H264 and AAC", func() bool {
		st := wn.Hub.Stream(key)
		return st != nil && st.Codecs().Video == "H264" && st.Codecs().Audio == "AAC"
	})

	const readFor = 5 * time.Second
	across := make(chan readResult, 1)
	go func() {
		res, err := testmedia.Read(t.Context(), wn.RTMPURL(key), readFor)
		across <- readResult{res, err}
	}()
	testmedia.Eventually(t, 10*time.Second, "RTMP player attached", func() bool { return wn.Hub.Stream(key).ReaderCount() > 0 })
	want := map[string]int{}
	var bad []*rtp.Packet
	for _, b := range badOpus {
		bad = append(bad, b.p())
		want[b.reason]++
	}
	select {
	case inject <- bad:
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher did not take the bad packets")
	}
	r := <-across
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("RTMP across the bad audio packets: %+v", r.res)
	// AAC is 1024 samples at 48 kHz: 46.9 frames a second; the bad
	// packets came at the read's start
	if r.res.AudioCodec != "aac" || r.res.AudioFrames < 150 || r.res.VideoCodec != "h264" || r.res.VideoFrames < 75 || r.res.DecodeErrors != "" {
		t.Fatalf("RTMP across the bad audio packets: %+v", r.res)
	}
	if p, ok := wn.Hub.Stream(key).Publisher(); !ok || p.Protocol != "whip" || wn.s.SessionCount() != 1 {
		t.Fatalf("publisher %+v ok %v sessions %d after the bad packets", p, ok, wn.s.SessionCount())
	}
	if st, body := webrtcpeer.Do(t, http.MethodDelete, wn.FLVBase()+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
	testmedia.Eventually(t, 10*time.Second, "audio drop totals logged at the end", func() bool {
		logs := wn.log.String()
		for reason, n := range want {
			if !strings.Contains(logs, `"`+reason+`":`+strconv.Itoa(n)) {
				return false
			}
		}
		return true
	})
	// the server's totals (relaymesh_webrtc_ingest_dropped_total) have them
	for _, d := range wn.s.IngestDrops() {
		if d.Track == "audio" && d.Count != uint64(want["audio_"+d.Reason]) {
			t.Errorf("IngestDrops: audio %s = %d, the publisher sent %d", d.Reason, d.Count, want["audio_"+d.Reason])
		}
	}
	if logs := wn.log.String(); strings.Contains(logs, "audio transcoder stopped") || strings.Contains(logs, "audio track ended") {
		t.Errorf("the audio ended on bad input:\n%s", logs)
	}
}
