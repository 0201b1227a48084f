package link

import (
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/rtmpsniff"
)

// TestRTMPClientStreamIDs: the RTMP push and pull clients send publish,
// play and the media on the stream the server created, with its id in the
// byte order of the spec (little-endian), as servers that check it need.
func TestRTMPClientStreamIDs(t *testing.T) {
	needPeers(t)
	src := startNode(t, "source", nodeOpts{})
	dst := startNode(t, "target", nodeOpts{})
	sniff := rtmpsniff.Start(t, dst.tn.RTMP.Addr().String())
	via := "rtmp://" + sniff.Addr()
	feed(t, src, "live/src", 12*time.Second)
	src.live(t, "live/src", 10*time.Second)

	push := NewPusher(src.hub, PushConfig{Key: "live/src", Next: fixed(Target{URL: via + "/live/dst"})}, testLog(t, "pusher"))
	runBG(t, push.Run)
	dst.live(t, "live/dst", 10*time.Second)
	pull := NewPuller(src.hub, PullConfig{Key: "live/back", Next: fixed(Target{URL: via + "/live/dst"})}, testLog(t, "puller"))
	runBG(t, pull.Run)
	src.live(t, "live/back", 10*time.Second)
	checkRead(t, "the stream pulled back", src.rtmpURL+"/live/back", 3*time.Second)

	if err := sniff.Err(); err != nil {
		t.Fatalf("proxy: %v", err)
	}
	var commands, media int
	for _, h := range sniff.Headers() {
		if !h.FromClient || !h.OnStream() {
			continue
		}
		switch {
		case h.WrongStream():
			t.Errorf("client sent type %d on csid %d with stream id bytes % x (%d), want stream 0 or 1, 1 as 01 00 00 00",
				h.Type, h.CSID, h.MSID, h.StreamID())
		case h.Type != rtmpsniff.TypeCommand:
			media++
		case h.StreamID() == 1:
			commands++
		}
	}
	// publish and play each open a chunk stream with a type-0 header
	if commands < 2 || media < 2 {
		t.Errorf("saw %d client commands and %d media headers on stream 1; want publish, play and the pushed media", commands, media)
	}
}
