package webrtc_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// TestWHEPCountsSentBytes: a pion WHEP player reads an RTMP-published
// H.264 stream with AAC (Opus to the player) for a while; the stream's
// sent bytes (relaymesh_stream_sent_bytes_total) grew by about the RTP
// payload bytes the player received, video and audio. WHEP players used
// to add nothing to them.
func TestWHEPCountsSentBytes(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n, s := node(t, webrtc.Config{})
	key := "live/whepbytes"
	testmedia.Publish(t, t.Context(), testmedia.Source{Realtime: true, Duration: 30 * time.Second, Audio: true, GOP: 25}, n.RTMPURL(key))
	testmedia.Eventually(t, 15*time.Second, "stream live with AAC", func() bool {
		st := n.Hub.Stream(key)
		return st != nil && st.Codecs().Audio == "AAC"
	})
	before := n.Hub.Stream(key).BytesOut()

	pc := webrtcpeer.New(t)
	for _, k := range []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	var got [2]atomic.Int64 // payload bytes: video, audio
	readers := make(chan struct{}, 2)
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		defer func() { readers <- struct{}{} }()
		i := 0
		if tr.Kind() == pwebrtc.RTPCodecTypeAudio {
			i = 1
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			got[i].Add(int64(len(p.Payload)))
		}
	})
	loc := webrtcpeer.Connect(t, pc, n.FLVBase()+"/"+key+"/whep")
	// 3 s of Opus at 64 kb/s is about 24 kB
	testmedia.Eventually(t, 30*time.Second, "3 s of audio and 300 kB of video received", func() bool {
		return got[0].Load() > 300_000 && got[1].Load() > 20_000
	})
	if st, body := webrtcpeer.Do(t, http.MethodDelete, n.FLVBase()+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
	testmedia.Eventually(t, 10*time.Second, "session gone after DELETE", func() bool { return s.SessionCount() == 0 })
	pc.Close()
	for range 2 {
		select {
		case <-readers:
		case <-time.After(10 * time.Second):
			t.Fatal("the player's tracks did not end after DELETE")
		}
	}
	recv := got[0].Load() + got[1].Load()
	sent := int64(n.Hub.Stream(key).BytesOut() - before)
	t.Logf("player received %d payload bytes (video %d, audio %d); the stream's sent bytes grew by %d", recv, got[0].Load(), got[1].Load(), sent)
	// what was in flight at DELETE was counted and not received (a few
	// packets), a retransmission received twice was counted once
	if sent < recv-recv/100 || sent > recv+recv/20 {
		t.Fatalf("the stream's sent bytes grew by %d; the player received %d", sent, recv)
	}
}
