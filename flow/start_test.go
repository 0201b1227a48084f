package flow

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestFlowStartsAtVideoKeyframe: a flow starts at its source's first
// video keyframe, never on the audio before it, and on audio only when the
// source carries no video: at once when its onMetaData declares audio
// only (the first audio packet is the flow's first), after videoWait when
// it declares nothing (today's rule for such a source). A source that
// declares video is waited for its keyframe though its GOP (4 s) is longer
// than videoWait; so is one whose audio comes before its video header (an
// MPEG-TS publisher's video header comes only with its first IDR).
func TestFlowStartsAtVideoKeyframe(t *testing.T) {
	for _, c := range []struct {
		name string
		meta *unit.Packet // the source's onMetaData (nil: none)
		// video is when the source's first video keyframe comes (0: the
		// source sends no video)
		video time.Duration
		// firstAudio: the flow starts with the source's first audio
		// packet; otherwise audio from before videoWait is dropped
		firstAudio bool
		// after: the flow starts after the source's audio frame after
		// (with !firstAudio)
		after    int
		declares string // what the source's status shows it declares
		// silent says when the source sends nothing (nil: never); its
		// frames then are not sent
		silent func(time.Duration) bool
	}{
		{name: "audio before the video header, declared nothing", video: 300 * time.Millisecond},
		{name: "audio only, declared nothing"},
		// the wait counts from the source's first packet, and pauses
		// over SilenceFailover do not restart it (they did: the flow
		// never started)
		{name: "audio only in 400 ms bursts with 350 ms pauses, declared nothing",
			silent: func(e time.Duration) bool { return e%(750*time.Millisecond) >= 400*time.Millisecond }},
		// a silence of videoWait or more ends the run: the wait starts
		// again at frame 200, the first after it
		{name: "audio only, 1.5 s then silent for 2.5 s, declared nothing", after: 200,
			silent: func(e time.Duration) bool { return e >= 1500*time.Millisecond && e < 4*time.Second }},
		{name: "audio only, declared in onMetaData", meta: unit.MetaDataPacket(0, "", true), firstAudio: true, declares: "audio only"},
		{name: "video declared, 4 s GOP", meta: unit.MetaDataPacket(0, "H264", true), video: 4 * time.Second, declares: "video"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rig := startRunner(t, slog.New(slog.DiscardHandler), "start", "live/start", c.meta)
			ctx, r, out := rig.ctx, rig.r, rig.out
			go source(ctx, rig.pub, c.video, 0, 0, c.silent)

			// the first media packet of the flow's stream
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
			defer rcancel()
			var first *unit.Packet
			for first == nil {
				pkts, err := out.Next(rctx, make([]*unit.Packet, 0, 16))
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
			case c.video > 0 && (first.Kind != unit.KindVideo || !first.Keyframe):
				t.Errorf("the flow starts with a %v packet (keyframe %v), want the video keyframe", first.Kind, first.Keyframe)
			case c.video == 0 && first.Kind != unit.KindAudio:
				t.Errorf("the audio-only flow starts with a %v packet, want audio", first.Kind)
			case c.video == 0 && c.firstAudio && frameNo(first) != 0:
				t.Errorf("the flow starts with the source's audio frame %d, want its first (0): audio dropped", frameNo(first))
			case c.video == 0 && !c.firstAudio && frameNo(first) <= c.after:
				t.Errorf("the flow starts with the source's audio frame %d, want one after frame %d: started before videoWait", frameNo(first), c.after)
			}
			if first.Kind == unit.KindAudio {
				t.Logf("the flow starts with the source's audio frame %d", frameNo(first))
			}
			if got := r.Status().Sources[0].Declares; got != c.declares {
				t.Errorf("the source's status declares %q, want %q", got, c.declares)
			}
		})
	}
}

// source publishes 20 ms AAC frames numbered from 0 in real time (the
// flow's waits are in wall time) and, from video on, H.264 (pFirst P
// frames without a keyframe before them, then the sequence header, a
// keyframe and P frames), until ctx ends. With burst > 0 the frames go
// out in groups every burst, as an MPEG-TS muxer packs audio PES. While
// silent (if not nil) says so of the time since the start, the source
// sends nothing: the frames due then are skipped.
func source(ctx context.Context, pub *media.Publisher, video time.Duration, pFirst int, burst time.Duration, silent func(time.Duration) bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start, sent := time.Now(), time.Now()
	sentVideo := false
	for n := 0; ; {
		if burst <= 0 || time.Since(sent) >= burst {
			sent = time.Now()
			for due := int(time.Since(start)/(20*time.Millisecond)) + 1; n < due; n++ {
				if silent != nil && silent(time.Duration(n)*20*time.Millisecond) {
					continue
				}
				if !frame(pub, n, video, &pFirst, &sentVideo) {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// frame writes source's frame n: audio, and from video on a video frame.
func frame(pub *media.Publisher, n int, video time.Duration, pFirst *int, sentVideo *bool) bool {
	ms := int64(n) * 20
	if pub.Write(&unit.Packet{Kind: unit.KindAudio, Time: ms, Payload: []byte{0xaf, 1, byte(n >> 8), byte(n)}}) != nil {
		return false
	}
	if video <= 0 || ms < video.Milliseconds() {
		return true
	}
	p := &unit.Packet{Kind: unit.KindVideo, Time: ms, Payload: []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a}}
	switch {
	case *pFirst > 0:
		*pFirst--
	case !*sentVideo:
		*sentVideo = true
		sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5}
		pps := []byte{0x68, 0xce, 0x3c, 0x80}
		rec := []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, byte(len(sps))}
		rec = append(append(rec, sps...), 1, 0, byte(len(pps)))
		if pub.Write(&unit.Packet{Kind: unit.KindVideo, Time: ms, Header: true, Payload: append(rec, pps...)}) != nil {
			return false
		}
		p = &unit.Packet{Kind: unit.KindVideo, Time: ms, Keyframe: true, Payload: []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88}}
	}
	return pub.Write(p) == nil
}

// TestFlowDeclaredVideoLastResort: a source that declares video but
// sends only audio (in bursts) for declaredVideoWait starts the flow on its audio (a
// warning says so) rather than carry nothing, and its video, when it
// comes, joins at its first keyframe: the P frames before it are not in
// the flow.
func TestFlowDeclaredVideoLastResort(t *testing.T) {
	defer func(d time.Duration) { declaredVideoWait = d }(declaredVideoWait)
	declaredVideoWait = 3 * time.Second
	log, logs := testmedia.Logger(t, "flow")
	rig := startRunner(t, log, "late", "live/late", unit.MetaDataPacket(0, "H264", true))
	ctx, out := rig.ctx, rig.out
	// audio in bursts 400 ms apart (gaps longer than SilenceFailover: the
	// bound counts from the first packet, not from the last silence);
	// video from 4 s on (after the bound): 5 P frames, then the keyframe
	go source(ctx, rig.pub, 4*time.Second, 5, 400*time.Millisecond, nil)

	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	var first, firstVideo *unit.Packet
	for firstVideo == nil {
		pkts, err := out.Next(rctx, make([]*unit.Packet, 0, 16))
		for _, p := range pkts {
			switch {
			case p.Header:
			case first == nil:
				first = p
				if p.Kind == unit.KindVideo {
					firstVideo = p
				}
			case p.Kind == unit.KindVideo && firstVideo == nil:
				firstVideo = p
			}
		}
		if err != nil {
			t.Fatalf("no video in the flow's stream: %v", err)
		}
	}
	if first.Kind != unit.KindAudio {
		t.Errorf("the flow starts with a %v packet, want audio (past the bound)", first.Kind)
	}
	if !firstVideo.Keyframe {
		t.Errorf("the flow's first video packet is not a keyframe: video joined on a P frame")
	}
	if !strings.Contains(logs.String(), "declared video but sent no video keyframe") {
		t.Error("no warning that the flow started on audio though the source declared video")
	}
}

// frameNo is the number source gave an audio frame.
func frameNo(p *unit.Packet) int { return int(p.Payload[2])<<8 | int(p.Payload[3]) }

// runnerRig is a flow of one rtmp-push source running on a hub of its
// own, a reader of the flow's stream and the source's publisher.
type runnerRig struct {
	ctx context.Context
	r   *Runner
	out *media.Reader
	pub *media.Publisher
}

// startRunner runs flow id with one rtmp-push source at key on a new hub
// (logging to log), subscribes to the flow's stream, publishes the
// source's onMetaData meta (nil: none) and its AAC sequence header, and
// waits until the flow has read them; everything ends with the test.
func startRunner(t *testing.T, log *slog.Logger, id, key string, meta *unit.Packet) runnerRig {
	t.Helper()
	hub := media.NewHub(media.DefaultHubConfig(), log)
	t.Cleanup(hub.Close)
	spec := Spec{ID: id, Source: Source{Type: SrcRTMPPush, Stream: key}, Outputs: []Output{{Name: "p", Type: OutRTMPPull}}}
	r := NewRunner(spec, hub, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-r.Running()
	out, err := hub.Subscribe(ctx, spec.Key(), media.SubscribeOptions{Format: media.FormatFLV, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	pub, err := hub.Publish(key, media.PublisherInfo{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	hdrs := []*unit.Packet{{Kind: unit.KindAudio, Header: true, Payload: []byte{0xaf, 0, 0x12, 0x10}}}
	if meta != nil {
		hdrs = append([]*unit.Packet{meta}, hdrs...)
	}
	for _, p := range hdrs {
		if err := pub.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// the flow reads the source before its first audio frame
	testmedia.Eventually(t, 10*time.Second, "the flow to receive the source's headers", func() bool {
		return r.Status().Sources[0].LastPacket != nil
	})
	return runnerRig{ctx: ctx, r: r, out: out, pub: pub}
}
