package webrtc_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// sharePlayer is a pion WHEP player that keeps the first frames of
// video and packets of Opus it receives as files, and counts all Opus.
type sharePlayer struct {
	loc       string
	video     string
	audio     string
	audioPkts atomic.Int64
	videoDone chan struct{}
	audioDone chan struct{}
}

func playWHEP(t *testing.T, url string, wantFrames, wantAudio int) *sharePlayer {
	t.Helper()
	dir := t.TempDir()
	p := &sharePlayer{video: filepath.Join(dir, "v.h264"), audio: filepath.Join(dir, "a.ogg"), videoDone: make(chan struct{}), audioDone: make(chan struct{})}
	pc := webrtcpeer.New(t)
	for _, k := range []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	ow, err := oggwriter.New(p.audio, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	vw, err := h264writer.New(p.video)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		if tr.Kind() == pwebrtc.RTPCodecTypeAudio {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				switch n := p.audioPkts.Add(1); {
				case n < int64(wantAudio):
					ow.WriteRTP(pkt)
				case n == int64(wantAudio):
					ow.Close()
					close(p.audioDone)
				}
			}
		}
		var last uint32
		frames := 0
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if frames == 0 || pkt.Timestamp != last {
				if frames++; frames > wantFrames {
					once.Do(func() { vw.Close(); close(p.videoDone) })
					continue // keep reading: the session stays up
				}
				last = pkt.Timestamp
			}
			if frames <= wantFrames {
				vw.WriteRTP(pkt)
			}
		}
	})
	p.loc = webrtcpeer.Connect(t, pc, url)
	return p
}

// TestWHEPSharesOpus: three pion WHEP players of one RTMP stream with
// AAC each receive decodable H.264 and Opus, transcoded by exactly one
// ffmpeg child for the stream; when one player leaves (whichever fed
// the transcoder) the others keep receiving Opus from the same child,
// and the child is gone once the last one leaves.
func TestWHEPSharesOpus(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n, s := node(t, webrtc.Config{})
	ctx := t.Context()
	key := "live/shared"
	testmedia.Publish(t, ctx, testmedia.Source{Realtime: true, Duration: 60 * time.Second, Audio: true, GOP: 25}, n.RTMPURL(key))
	testmedia.Eventually(t, 15*time.Second, "stream live", func() bool { return n.Hub.Stream(key) != nil })

	const wantFrames, wantAudio = 40, 75
	var players []*sharePlayer
	for range 3 {
		players = append(players, playWHEP(t, n.FLVBase()+"/"+key+"/whep", wantFrames, wantAudio))
	}
	for i, p := range players {
		for what, ch := range map[string]chan struct{}{"video frames": p.videoDone, "Opus packets": p.audioDone} {
			select {
			case <-ch:
			case <-time.After(60 * time.Second):
				t.Fatalf("player %d: not all %s received (%d Opus packets)", i, what, p.audioPkts.Load())
			}
		}
		if kids := children(t, "libopus"); len(kids) != 1 {
			t.Fatalf("AAC->Opus ffmpeg children with %d players: %q, want 1", len(players), kids)
		}
	}
	for i, p := range players {
		res, err := testmedia.Analyze(ctx, p.video)
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.VideoFrames < wantFrames-5 || res.DecodeErrors != "" {
			t.Fatalf("player %d video: %+v", i, res)
		}
		ares, err := testmedia.Analyze(ctx, p.audio)
		if err != nil {
			t.Fatal(err)
		}
		if ares.AudioCodec != "opus" || ares.AudioFrames < wantAudio-5 || ares.DecodeErrors != "" {
			t.Fatalf("player %d audio: %+v", i, ares)
		}
	}
	// each player leaving in turn: the rest keep getting Opus from the
	// one child until the last leaves, which stops it
	for i, p := range players {
		if st, body := webrtcpeer.Do(t, http.MethodDelete, n.FLVBase()+p.loc, "", ""); st != http.StatusOK {
			t.Fatalf("DELETE player %d: %d %s", i, st, body)
		}
		if i == len(players)-1 {
			break
		}
		for _, q := range players[i+1:] {
			from := q.audioPkts.Load()
			testmedia.Eventually(t, 15*time.Second, fmt.Sprintf("Opus still flowing after %d left", i+1), func() bool { return q.audioPkts.Load() > from+50 })
		}
		if kids := children(t, "libopus"); len(kids) != 1 {
			t.Fatalf("AAC->Opus ffmpeg children after %d of %d players left: %q, want 1", i+1, len(players), kids)
		}
	}
	// the last DELETE returns once the stream's child is killed and reaped
	if kids := children(t, "libopus"); len(kids) != 0 {
		t.Fatalf("AAC->Opus ffmpeg outlived the stream's last WHEP session: %q", kids)
	}
	testmedia.Eventually(t, 10*time.Second, "sessions gone", func() bool { return s.SessionCount() == 0 })
}
