package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"

	"github.com/relaymesh/relaymesh/bench/rtmpdial"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

// TestPublishTimeline reads what one stream writes to the wire: the
// codec header once, then the clip's frames in a loop on one timeline
// that keeps growing (each loop one clip duration later), batched writes
// and all.
func TestPublishTimeline(t *testing.T) {
	c := &rtmpdial.Clip{Dur: 1000,
		Headers: []*unit.Packet{{Kind: unit.KindVideo, Header: true, Payload: []byte{0x17, 0, 0, 0, 0, 1, 2, 3}}}}
	for i := range 10 {
		c.Media = append(c.Media,
			&unit.Packet{Kind: unit.KindVideo, Time: int64(i * 100), Keyframe: i == 0, Payload: []byte{0x27, 1, 0, 0, 0, byte(i)}},
			&unit.Packet{Kind: unit.KindAudio, Time: int64(i*100 + 50), Payload: []byte{0xaf, 1, byte(i)}})
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	bw := &batchWriter{nc: a}
	s := &stream{nc: a, bw: bw, mc: rtmp.NewMessageConn(bytecounter.NewReadWriter(struct {
		io.Reader
		io.Writer
	}{a, bw}))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.publish(ctx, c, time.Now(), 20*time.Millisecond) }()

	peer := rtmp.NewMessageConn(bytecounter.NewReadWriter(b))
	headers, video, audio := 0, 0, 0
	lastVideo := int64(-1)
	for lastVideo < 2500 { // into the third loop
		msg, err := peer.Read()
		if err != nil {
			t.Fatalf("read after %d video frames: %v", video, err)
		}
		ts := msg.Timestamp.Milliseconds()
		switch {
		case len(msg.Body) > 1 && msg.Body[1] == 0:
			headers++
		case msg.Type == uint8(unit.KindVideo):
			if lastVideo >= 0 && ts != lastVideo+100 {
				t.Fatalf("video frame %d at %d ms after one at %d: want one every 100 ms on one timeline", video, ts, lastVideo)
			}
			if want := int(ts/100) % 10; int(msg.Body[5]) != want {
				t.Fatalf("video at %d ms carries frame %d of the clip, want %d", ts, msg.Body[5], want)
			}
			lastVideo = ts
			video++
		case msg.Type == uint8(unit.KindAudio):
			audio++
		}
	}
	cancel()
	go rtmpdial.Discard(peer) // the publisher may be writing a last batch
	if err := <-done; err != nil {
		t.Fatalf("publish: %v", err)
	}
	if headers != 1 || video != 26 || audio < 25 {
		t.Fatalf("got %d headers, %d video, %d audio messages; want 1 header, 26 video (0..2500 ms), >= 25 audio", headers, video, audio)
	}
}
