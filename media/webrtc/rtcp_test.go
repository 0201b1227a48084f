package webrtc_test

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// badRTCP is a transport-wide congestion control feedback (RTPFB,
// FMT 15) cut after the media SSRC: SRTCP frames it and finds its
// destination, and the full parse the node's interceptors do refuses it.
type badRTCP struct{ ssrc uint32 }

func (b badRTCP) Marshal() ([]byte, error) {
	p := []byte{0x8f, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(p[8:], b.ssrc)
	return p, nil
}
func (badRTCP) Unmarshal([]byte) error      { return nil }
func (b badRTCP) DestinationSSRC() []uint32 { return []uint32{b.ssrc} }
func (badRTCP) MarshalSize() int            { return 8 }

// TestMalformedRTCPSkipped: a WHEP player sends malformed RTCP, then a
// NACK for a packet it has; the node skips the bad packets and
// retransmits the NACKed one (the session's RTCP loop used to end at the
// first bad packet, and NACKs went unanswered from then on).
func TestMalformedRTCPSkipped(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	n, _ := node(t, webrtc.Config{})
	key := "live/rtcp"
	testmedia.Publish(t, t.Context(), testmedia.Source{Realtime: true, Duration: 60 * time.Second, GOP: 25}, n.RTMPURL(key))
	testmedia.Eventually(t, 15*time.Second, "stream live", func() bool { return n.Hub.Stream(key) != nil })

	// a retransmission without RTX repeats a sequence number, which SRTP
	// replay protection would drop before the track sees it
	pc := webrtcpeer.New(t, func(se *pwebrtc.SettingEngine) { se.DisableSRTPReplayProtection(true) })
	if _, err := pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[uint16]int{}
	var ssrc uint32
	var last uint16
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			ssrc, last = p.SSRC, p.SequenceNumber
			seen[p.SequenceNumber]++
			mu.Unlock()
		}
	})
	webrtcpeer.Connect(t, pc, n.FLVBase()+"/"+key+"/whep")
	testmedia.Eventually(t, 20*time.Second, "100 RTP packets", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 100
	})
	mu.Lock()
	media, want := ssrc, last-10
	mu.Unlock()
	for range 5 {
		if err := pc.WriteRTCP([]rtcp.Packet{badRTCP{ssrc: media}}); err != nil {
			t.Fatal(err)
		}
	}
	nack := &rtcp.TransportLayerNack{MediaSSRC: media, Nacks: []rtcp.NackPair{{PacketID: want}}}
	testmedia.Eventually(t, 20*time.Second, "the NACKed packet sent again after malformed RTCP", func() bool {
		if err := pc.WriteRTCP([]rtcp.Packet{nack}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen[want] >= 2
	})
}
