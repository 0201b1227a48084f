package media_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestStreamEndTSLane: an RTMP-published (FLV) stream read as MPEG-TS (an
// SRT reader, another center's on-demand pull) reaches its TS readers to
// its last frame when the publisher leaves: the remuxer that feeds the TS
// lane finishes the FLV lane before the TS lane ends. It used to be
// stopped at the end, behind the publisher, and the TS readers lost the
// last frames. The packets are ffmpeg's; the counts are ffprobe's.
func TestStreamEndTSLane(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	path := ffmpegFLV(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-shortest")
	wantVideo, wantAudio := probePackets(t, path, "v"), probePackets(t, path, "a")
	h := newHub(t, func(c *media.HubConfig) {
		c.ReconnectGrace = 0
	})
	p := publish(t, h, "live/end")
	rd, err := h.Subscribe(context.Background(), "live/end", media.SubscribeOptions{Format: media.FormatTS})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// in real time, as a publisher sends (a burst of all would overrun
	// the remuxer's reader, which then skips), but the last 200 ms at
	// once and the publisher gone right after them, as ffmpeg ends: its
	// interleaving queue goes out at the end of its input. Audio before
	// the first video keyframe is not read (readers start at a keyframe).
	tags := testmedia.FLVTags(t, path)
	start, end := time.Now(), tags[len(tags)-1].TS-200
	keyed := false
	for _, tag := range tags {
		time.Sleep(time.Until(start.Add(time.Duration(min(tag.TS, end)) * time.Millisecond)))
		pkt, err := unit.TagPacket(unit.Kind(tag.Kind), tag.TS, tag.Body)
		if err != nil {
			t.Fatal(err)
		}
		if pkt == nil {
			continue
		}
		keyed = keyed || pkt.Keyframe
		if !keyed && pkt.Kind == unit.KindAudio && !pkt.Header {
			wantAudio--
		}
		write(t, p, pkt)
	}
	p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dm := mpegts.NewDemuxer()
	video, audio := map[int64]bool{}, map[int64]bool{}
	count := func(pk *unit.Packet) {
		switch {
		case pk.Header:
		case pk.Kind == unit.KindVideo:
			video[pk.Time] = true
		case pk.Kind == unit.KindAudio:
			audio[pk.Time] = true
		}
	}
	for {
		pkts, err := rd.Next(ctx, nil)
		for _, pk := range pkts {
			if ferr := dm.Feed(pk.Payload, count); ferr != nil {
				t.Fatalf("the TS lane does not demux: %v", ferr)
			}
		}
		if errors.Is(err, media.ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatalf("TS reader: %v, want the stream's end", err)
		}
	}
	_ = dm.Flush(count)
	t.Logf("published %d video and %d audio frames; the TS reader got %d and %d", wantVideo, wantAudio, len(video), len(audio))
	if len(video) != wantVideo || len(audio) != wantAudio {
		t.Errorf("the TS reader got %d of %d video and %d of %d audio frames", len(video), wantVideo, len(audio), wantAudio)
	}
}
