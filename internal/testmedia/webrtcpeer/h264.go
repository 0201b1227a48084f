package webrtcpeer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// H264File makes an Annex B H.264 file with ffmpeg (lavfi testsrc,
// 320x240 25 fps baseline), one slice per frame, a keyframe every gop
// frames.
func H264File(t *testing.T, seconds, gop int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "src.h264")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
		"testsrc=size=320x240:rate=25:duration="+strconv.Itoa(seconds), "-c:v", "libx264", "-profile:v", "baseline",
		"-preset", "ultrafast", "-threads", "1", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "h264", "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// AccessUnits calls send with each access unit of an Annex B file (its
// NAL units with start codes; reused after send returns) at 25 fps,
// until ctx ends, the file does or send fails.
func AccessUnits(ctx context.Context, t *testing.T, path string, send func(au []byte) error) {
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	rd, err := h264reader.NewReader(f)
	if err != nil {
		t.Error(err)
		return
	}
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	var au bytes.Buffer
	for {
		nal, err := rd.NextNAL()
		if err != nil {
			return
		}
		au.Write([]byte{0, 0, 0, 1})
		au.Write(nal.Data)
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := send(au.Bytes()); err != nil {
			return
		}
		au.Reset()
	}
}

// ptMark at the end of a payload makes PTSwitch send the packet with the
// payload type that follows it (a TrackLocalStaticRTP sets its own).
var ptMark = []byte("SETPT")

// PTSwitch is a client interceptor (for NewWith) that sends the packets
// WithPT marked with another payload type.
type PTSwitch struct{ interceptor.NoOp }

func (*PTSwitch) NewInterceptor(string) (interceptor.Interceptor, error) { return &PTSwitch{}, nil }

func (*PTSwitch) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if i := bytes.Index(payload, ptMark); i >= 0 && i+len(ptMark) < len(payload) {
			h.PayloadType = payload[i+len(ptMark)]
		}
		return w.Write(h, payload, a)
	})
}

// WithPT marks payload for PTSwitch to send it with payload type pt.
func WithPT(pt byte, payload ...byte) []byte {
	return append(append(payload, ptMark...), pt)
}

// H264RTPTrack adds a sendonly H.264 track to pc that the test writes
// its own RTP packets to (a WHIP publisher's video).
func H264RTPTrack(t *testing.T, pc *pwebrtc.PeerConnection) *pwebrtc.TrackLocalStaticRTP {
	t.Helper()
	track, err := pwebrtc.NewTrackLocalStaticRTP(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	return track
}
