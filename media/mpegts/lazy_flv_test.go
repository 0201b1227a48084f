package mpegts_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/testnode"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestLazyFLVLane: the FLV lane of an SRT publisher is filled only while
// somebody reads it, and a first FLV reader still starts at once from a
// GOP rebuilt from the TS lane: the keyframe is there the moment it
// subscribes, and from it on every video frame comes once, in order, with
// no frame missing where the rebuilt GOP meets the publisher's live
// packets. After that reader left (the lane is emptied), an RTMP player
// (ffmpeg) gets a rebuilt GOP again: it starts at a keyframe and decodes.
func TestLazyFLVLane(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n := lazyNode(t)
	const key = "live/lazy"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := testmedia.Publish(t, ctx, testmedia.Source{Width: 320, Height: 240, FPS: 25, GOP: 25, Audio: true,
		Duration: 40 * time.Second, Realtime: true}, n.SRTBase()+"?streamid=publish:"+key)
	_ = pub
	testmedia.Eventually(t, 20*time.Second, "3 s published", func() bool {
		s := n.Hub.Stream(key)
		return s != nil && s.Meter.Rates().Frames >= 75
	})

	rd, err := n.Hub.Subscribe(ctx, key, media.SubscribeOptions{Format: media.FormatFLV, Info: media.ReaderInfo{Protocol: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	// what is there at once: Next with a context already done returns
	// only what it need not wait for
	done, stop := context.WithCancel(ctx)
	stop()
	first, _ := rd.Next(done, make([]*unit.Packet, 0, 512))
	var video []*unit.Packet
	headers := 0
	for _, p := range first {
		switch {
		case p.Header:
			headers++
		case p.Kind == unit.KindVideo:
			video = append(video, p)
		}
	}
	if headers < 2 || len(video) == 0 || !video[0].Keyframe {
		t.Fatalf("at subscribe: %d headers, %d video frames (first keyframe: %v), want both headers and a keyframe",
			headers, len(video), len(video) > 0 && video[0].Keyframe)
	}
	cached := len(video)
	var audio []int64
	for _, p := range first {
		if p.Kind == unit.KindAudio && !p.Header {
			audio = append(audio, p.Time)
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for len(video) < cached+50 {
		pkts, err := rd.Next(rctx, nil)
		if err != nil {
			t.Fatalf("after %d video frames: %v", len(video), err)
		}
		for _, p := range pkts {
			switch {
			case p.Header:
			case p.Kind == unit.KindVideo:
				video = append(video, p)
			case p.Kind == unit.KindAudio:
				audio = append(audio, p.Time)
			}
		}
	}
	rd.Close()
	t.Logf("%d video frames from the rebuilt GOP, %d after", cached, len(video)-cached)
	for i := 1; i < len(video); i++ {
		// 25 fps: 40 ms a frame; a missing frame would be 80
		if d := video[i].Time - video[i-1].Time; d <= 0 || d > 60 {
			t.Errorf("video frame %d (%d from the rebuilt GOP) is %d ms after the one before, want 40", i, cached, d)
		}
	}
	for i := 1; i < len(audio); i++ {
		if audio[i] <= audio[i-1] {
			t.Errorf("audio frame %d at %d ms after %d ms", i, audio[i], audio[i-1])
		}
	}

	res, err := testmedia.Read(ctx, n.RTMPURL(key), 3*time.Second)
	if err != nil {
		t.Fatalf("rtmp player: %.2000v", err)
	}
	t.Logf("rtmp player: %+v", res)
	if !res.FirstKey || res.NonMonotonic != 0 || res.DecodeErrors != "" || res.AudioFrames == 0 || res.VideoFrames < 50 {
		t.Errorf("rtmp player: first keyframe %v, %d non-monotonic, %d video and %d audio frames, decode errors %q",
			res.FirstKey, res.NonMonotonic, res.VideoFrames, res.AudioFrames, res.DecodeErrors)
	}
}

// TestLazyFLVReaderFromStart: an FLV reader that is there before an SRT
// publisher starts (a flow or relay pulling from it) gets the session's
// first keyframe, at time 0 (the TS starts at 0, as one our muxer made
// does). The rebuild's skip times started at 0 and dropped that keyframe:
// a flow reading it began with audio and non-key video, and everything
// downstream had audio a GOP ahead of its first keyframe
// (TestClusterFlowAcrossRegions's FlowB player got 51 of 100 video
// frames in 4 s).
func TestLazyFLVReaderFromStart(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	n := lazyNode(t)
	const key = "live/fromstart"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type sub struct {
		rd  *media.Reader
		err error
	}
	subbed := make(chan sub, 1)
	go func() {
		rd, err := n.Hub.Subscribe(ctx, key, media.SubscribeOptions{Format: media.FormatFLV, Wait: 30 * time.Second,
			Info: media.ReaderInfo{Protocol: "test"}})
		subbed <- sub{rd, err}
	}()
	testmedia.Publish(t, ctx, testmedia.Source{Width: 320, Height: 240, FPS: 25, GOP: 25,
		Duration: 40 * time.Second, Realtime: true, TSFromZero: true}, n.SRTBase()+"?streamid=publish:"+key)
	s := <-subbed
	if s.err != nil {
		t.Fatal(s.err)
	}
	defer s.rd.Close()
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	var firstVideo *unit.Packet
	for firstVideo == nil {
		pkts, err := s.rd.Next(rctx, nil)
		if err != nil {
			t.Fatalf("before the first video frame: %v", err)
		}
		for _, p := range pkts {
			if !p.Header && p.Kind == unit.KindVideo && firstVideo == nil {
				firstVideo = p
			}
		}
	}
	if !firstVideo.Keyframe || firstVideo.Time > 100 {
		t.Errorf("first video frame at %d ms, keyframe %v; want the session's first keyframe at about 0", firstVideo.Time, firstVideo.Keyframe)
	}
}

// lazyNode is a node with an SRT listener whose hub rebuilds a TS-native
// stream's FLV lane from its TS lane (the lazy FLV lane).
func lazyNode(t *testing.T) *testnode.Node {
	hc := media.DefaultHubConfig()
	return testnode.Start(t, testnode.Config{Name: "server", Hub: hc, SRT: &srt.Config{}})
}
