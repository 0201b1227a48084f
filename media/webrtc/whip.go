package webrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/relaymesh/relaymesh/media"
)

// startWHIP attaches a publisher and answers the offer with receive-only
// transceivers. Its H.264 becomes the stream's FLV video as it is.
func (ss *session) startWHIP(offer string, cfg *Config) (string, int, error) {
	pub, err := ss.srv.hub.Publish(ss.key, media.PublisherInfo{Protocol: "whip", Remote: ss.remote, Native: media.FormatFLV})
	if err != nil {
		status := http.StatusServiceUnavailable
		if errors.Is(err, media.ErrStreamBusy) {
			status = http.StatusConflict
		}
		return "", status, err
	}
	ss.onClose(pub.Close)
	if err := ss.newPC(cfg); err != nil {
		return "", http.StatusInternalServerError, err
	}
	for _, k := range []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPCodecTypeAudio} {
		if _, err := ss.pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return "", http.StatusInternalServerError, fmt.Errorf("%s transceiver: %w", k, err)
		}
	}
	w := &whipWriter{pub: pub}
	// one video and one audio track make the stream: an offer with more
	// media sections gets the rest drained (a second H264 track would race
	// the first on w, a second Opus track start a second ffmpeg)
	var haveVideo, haveAudio atomic.Bool
	ss.pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		switch {
		case tr.Kind() == pwebrtc.RTPCodecTypeVideo && tr.Codec().MimeType == pwebrtc.MimeTypeH264 && haveVideo.CompareAndSwap(false, true):
			ss.log.Info("video track", "codec", "H264")
			go ss.recvH264(tr, w)
		case tr.Kind() == pwebrtc.RTPCodecTypeAudio && tr.Codec().MimeType == pwebrtc.MimeTypeOpus && ffmpegAvailable() && haveAudio.CompareAndSwap(false, true):
			go ss.recvOpus(tr, w)
		default:
			// not carried: drain it so the receiver's buffers do not fill
			ss.log.Info("track not carried", "kind", tr.Kind().String(), "codec", tr.Codec().MimeType)
			go drain(tr)
		}
	})
	answer, status, err := ss.answer(ss.ctx, offer)
	if err != nil {
		return "", status, err
	}
	return answer, 0, nil
}

// drain reads a track not carried until it ends, into one buffer
// (ReadRTP allocates one per packet).
func drain(tr *pwebrtc.TrackRemote) {
	buf := make([]byte, rtpReadMTU)
	for {
		if _, _, err := tr.Read(buf); err != nil {
			return
		}
	}
}

// rtpReadMTU is pion's default receive MTU: the largest packet a track read
// returns whole.
const rtpReadMTU = 1500

// whipWriter turns H.264 access units into FLV video packets.
type whipWriter struct {
	pub      *media.Publisher
	sps, pps []byte
	started  bool // a keyframe was written
	ext      int64
	last     uint32
	first    bool
	// keyedFlag tells the keyframe-request ticker to stop
	keyedFlag atomic.Bool
	// mu serialises writes to pub from the video and audio goroutines
	mu         sync.Mutex
	videoStart time.Time // when the first video frame was written
}

func (ss *session) recvH264(tr *pwebrtc.TrackRemote, w *whipWriter) {
	sb := samplebuilder.New(512, &codecs.H264Packet{IsAVC: true}, 90000)
	// ask for a keyframe until one comes
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ss.ctx.Done():
				return
			case <-t.C:
				if w.keyed() {
					return
				}
				ss.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
			}
		}
	}()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			ss.close("video track ended: " + err.Error())
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			if err := w.write(s.Data, s.PacketTimestamp); err != nil {
				ss.close("publish: " + err.Error())
				return
			}
		}
	}
}

func (w *whipWriter) keyed() bool { return w.keyedFlag.Load() }

// write publishes one access unit (AVCC NAL units) taken at RTP time ts.
func (w *whipWriter) write(au []byte, ts uint32) error {
	if !w.first {
		w.first, w.last = true, ts
		w.mu.Lock()
		w.videoStart = time.Now()
		w.mu.Unlock()
	}
	w.ext += int64(int32(ts - w.last))
	w.last = ts
	ms := w.ext / 90
	// the FLV video tag: a 5-byte header (set below), then the NAL units
	// of au less parameter sets, AUDs and filler; one allocation per frame
	const tagHead = 5
	frame := make([]byte, tagHead, tagHead+len(au))
	key := false
	newParams := false
	for b := au; len(b) >= 4; {
		n := int(binary.BigEndian.Uint32(b))
		if n <= 0 || n > len(b)-4 {
			break
		}
		nalu := b[4 : 4+n]
		b = b[4+n:]
		switch nalu[0] & 0x1f {
		case 7:
			if !bytes.Equal(w.sps, nalu) {
				w.sps, newParams = bytes.Clone(nalu), true
			}
			continue
		case 8:
			if !bytes.Equal(w.pps, nalu) {
				w.pps, newParams = bytes.Clone(nalu), true
			}
			continue
		case 9, 12: // access unit delimiter, filler
			continue
		case 5:
			key = true
		}
		frame = binary.BigEndian.AppendUint32(frame, uint32(n))
		frame = append(frame, nalu...)
	}
	if newParams && len(w.sps) >= 4 && len(w.pps) > 0 {
		hdr := append([]byte{0x17, 0, 0, 0, 0}, avcRecord(w.sps, w.pps)...)
		if err := w.emit(media.KindVideo, ms, hdr); err != nil {
			return err
		}
	}
	if len(frame) == tagHead || w.sps == nil || (!w.started && !key) {
		return nil // nothing decodable yet: wait for a keyframe
	}
	w.started = true
	w.keyedFlag.Store(true)
	frame[0], frame[1] = 0x27, 1 // inter frame, AVC NALU, CTS 0
	if key {
		frame[0] = 0x17
	}
	return w.emit(media.KindVideo, ms, frame)
}

func (w *whipWriter) emit(kind media.Kind, ms int64, body []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := media.TagPacket(kind, ms, body)
	if err != nil || p == nil {
		return err
	}
	return w.pub.Write(p)
}
