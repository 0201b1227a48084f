package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
)

// rtpMTU keeps packets under common path MTUs with SRTP and TURN overhead.
const rtpMTU = 1200

// startWHEP subscribes a reader and answers the offer with a send-only
// video track carrying the stream's H.264 or H.265 as it is.
func (ss *session) startWHEP(ctx context.Context, offer string, cfg *Config) (string, int, error) {
	rd, err := ss.srv.hub.Subscribe(ctx, ss.key, media.SubscribeOptions{
		Format: media.FormatFLV,
		Info:   media.ReaderInfo{Protocol: "webrtc", Remote: ss.remote},
		Wait:   cfg.PlayWait,
	})
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, media.ErrTooManyReaders) {
			status = http.StatusServiceUnavailable
		}
		return "", status, err
	}
	ss.onClose(rd.Close)
	codec := rd.Stream().Codecs().Video
	if codec == "" {
		codec = "H264"
	}
	mime := pwebrtc.MimeTypeH264
	var payloader rtp.Payloader = &codecs.H264Payloader{}
	switch codec {
	case "H264":
	case "H265":
		mime = pwebrtc.MimeTypeH265
		payloader = &codecs.H265Payloader{}
	default:
		return "", http.StatusNotAcceptable, fmt.Errorf("the stream's video is %s: WebRTC carries H264 or H265", codec)
	}
	if !offers(offer, codec) {
		return "", http.StatusNotAcceptable, fmt.Errorf("the stream is %s and the offer does not list it", codec)
	}
	if err := ss.newPC(cfg); err != nil {
		return "", http.StatusInternalServerError, err
	}
	track, err := pwebrtc.NewTrackLocalStaticRTP(pwebrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}, "video", "relaymesh")
	if err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("video track: %w", err)
	}
	tr, err := ss.pc.AddTransceiverFromTrack(track, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("video transceiver: %w", err)
	}
	// AAC is transcoded to Opus once for the stream, shared by its
	// sessions; the track is offered whenever the player takes Opus, as
	// the stream's audio header may come after the offer (and with a new
	// publisher)
	var audio *opusShare
	if offers(offer, "OPUS") && ffmpegAvailable() {
		audio, err = ss.srv.joinOpus(ss, rd)
		if err != nil {
			return "", http.StatusInternalServerError, err
		}
		atr, err := ss.pc.AddTransceiverFromTrack(audio.track, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return "", http.StatusInternalServerError, fmt.Errorf("audio transceiver: %w", err)
		}
		go ss.readRTCP(atr.Sender())
	}
	answer, status, err := ss.answer(ctx, offer)
	if err != nil {
		return "", status, err
	}
	go ss.readRTCP(tr.Sender())
	go ss.send(rd, track, audio, codec, payloader)
	return answer, 0, nil
}

// maxBadRTCP is how many RTCP reads in a row may fail before the
// session is ended: each failure is one packet the player sent.
const maxBadRTCP = 1000

// readRTCP reads a sender's RTCP until it ends, for the interceptors
// (NACK, reports) that act on it as it is read; one buffer, where
// ReadRTCP allocates one per packet. A packet the interceptors cannot
// parse is skipped: it must not end NACK handling for the session.
func (ss *session) readRTCP(s *pwebrtc.RTPSender) {
	buf := make([]byte, rtpReadMTU)
	bad := 0
	for {
		_, _, err := s.Read(buf)
		if err == nil {
			bad = 0
			continue
		}
		if ss.ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) {
			return
		}
		if bad++; bad == 1 {
			ss.log.Debug("malformed RTCP skipped", "err", err)
		}
		if bad >= maxBadRTCP {
			ss.close(fmt.Sprintf("%d malformed RTCP packets in a row", bad))
			return
		}
	}
}

// send waits for the connection, then turns the reader's FLV video into
// RTP: AVCC/HVCC NAL units become Annex B access units with the parameter
// sets before each keyframe, timestamped with the PTS. AAC goes to the
// stream's shared Opus transcoder when audio is set. The reader's
// BytesOut counts the RTP payload bytes sent (the H.264/H.265 access
// units as packetized, and the Opus packets: see opusShare.sent), not
// RTP headers, SRTP tags or retransmissions.
func (ss *session) send(rd *media.Reader, track *pwebrtc.TrackLocalStaticRTP, audio *opusShare, codec string, pl rtp.Payloader) {
	select {
	case <-ss.connected:
	case <-ss.ctx.Done():
		return
	}
	pz := rtp.NewPacketizer(rtpMTU, 0, 0, pl, rtp.NewRandomSequencer(), 90000)
	var params [][]byte
	nalLen := 4
	var au []byte
	var buf []*unit.Packet
	for {
		var err error
		buf, err = rd.Next(ss.ctx, buf[:0:cap(buf)])
		if err != nil {
			if ss.ctx.Err() == nil {
				ss.close("stream: " + err.Error())
			}
			return
		}
		if cap(buf) == 0 {
			buf = make([]*unit.Packet, 0, 64)
		}
		for _, p := range buf {
			if p.Kind == unit.KindAudio && audio != nil {
				audio.push(ss, p)
				continue
			}
			if p.Kind != unit.KindVideo {
				continue
			}
			v, ok := unit.ParseVideoTag(p.Payload)
			if !ok || v.Codec != codec {
				continue
			}
			if v.Header {
				// a malformed record leaves no parameter sets: the
				// player waits for a good one
				params, nalLen, _ = mpegts.ParseDecoderConfig(codec == "H265", v.Data)
				continue
			}
			if v.EOS {
				continue
			}
			au = au[:0]
			if v.Keyframe {
				for _, ps := range params {
					au = appendAnnexB(au, ps)
				}
			}
			au = avccToAnnexB(au, v.Data, nalLen)
			if len(au) == 0 {
				continue
			}
			ts := uint32((p.Time + int64(v.CTS)) * 90)
			n := 0
			for _, pkt := range pz.Packetize(au, 0) {
				pkt.Timestamp = ts
				if err := track.WriteRTP(pkt); err != nil {
					ss.close("write: " + err.Error())
					return
				}
				n += len(pkt.Payload)
			}
			rd.BytesOut.Add(uint64(n))
		}
	}
}
