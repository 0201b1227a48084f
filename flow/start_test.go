package flow

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
)

// TestFlowStartsAtVideoKeyframe: a source whose audio header and audio
// come before its video header (an MPEG-TS publisher's video header comes
// only with its first IDR) starts the flow at its first video keyframe,
// not on the audio before it; an audio-only source still starts, on audio.
func TestFlowStartsAtVideoKeyframe(t *testing.T) {
	for _, c := range []struct {
		name  string
		video bool
	}{
		{"audio before the video header", true},
		{"audio only", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			hub := media.NewHub(media.DefaultHubConfig(), log)
			defer hub.Close()
			spec := Spec{ID: "start", Source: Source{Type: SrcRTMPPush, Stream: "live/start"},
				Outputs: []Output{{Name: "p", Type: OutRTMPPull}}}
			r := NewRunner(spec, hub, log)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-r.Running()
			out, err := hub.Subscribe(ctx, spec.Key(), media.SubscribeOptions{Format: media.FormatFLV, Wait: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()

			pub, err := hub.Publish("live/start", media.PublisherInfo{Protocol: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			write := func(p *media.Packet) {
				t.Helper()
				if err := pub.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			ms := int64(0)
			audio := func() {
				write(&media.Packet{Kind: media.KindAudio, Time: ms, Payload: []byte{0xaf, 1, 0x21, 0x10}})
				ms += 20
			}
			write(&media.Packet{Kind: media.KindAudio, Header: true, Payload: []byte{0xaf, 0, 0x12, 0x10}})
			// audio until the flow has received some of it
			testmedia.Eventually(t, 10*time.Second, "the flow to receive the source's audio", func() bool {
				audio()
				return r.Status().Sources[0].LastPacket != nil
			})
			// the switcher has handled that audio (the status is copied
			// after it): a flow that starts on it has written it
			if c.video {
				if got := hub.Stream(spec.Key()).Codecs(); got.Audio != "" {
					t.Fatalf("the flow started on the audio before the video header (its stream carries %+v)", got)
				}
				sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5}
				pps := []byte{0x68, 0xce, 0x3c, 0x80}
				rec := []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, byte(len(sps))}
				rec = append(append(rec, sps...), 1, 0, byte(len(pps)))
				write(&media.Packet{Kind: media.KindVideo, Time: ms, Header: true, Payload: append(rec, pps...)})
				write(&media.Packet{Kind: media.KindVideo, Time: ms, Keyframe: true, Payload: []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88}})
				for range 5 {
					audio()
					write(&media.Packet{Kind: media.KindVideo, Time: ms, Payload: []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a}})
				}
			} else {
				// audio goes on past the wait for a video header
				go func() {
					tick := time.NewTicker(20 * time.Millisecond)
					defer tick.Stop()
					for t := int64(ms); ; t += 20 {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
						}
						if pub.Write(&media.Packet{Kind: media.KindAudio, Time: t, Payload: []byte{0xaf, 1, 0x21, 0x10}}) != nil {
							return
						}
					}
				}()
			}

			// the first media packet of the flow's stream
			rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
			defer rcancel()
			var first *media.Packet
			for first == nil {
				pkts, err := out.Next(rctx, make([]*media.Packet, 0, 16))
				for _, p := range pkts {
					if !p.Header && first == nil {
						first = p
					}
				}
				if err != nil {
					t.Fatalf("no media in the flow's stream: %v", err)
				}
			}
			switch {
			case c.video && (first.Kind != media.KindVideo || !first.Keyframe):
				t.Errorf("the flow starts with a %v packet (keyframe %v) at %d ms, want the video keyframe", first.Kind, first.Keyframe, first.Time)
			case !c.video && first.Kind != media.KindAudio:
				t.Errorf("the audio-only flow starts with a %v packet, want audio", first.Kind)
			}
		})
	}
}
