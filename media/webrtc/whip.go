package webrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
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
	w := &whipWriter{pub: pub, drops: newDropLog(ss.log, &ss.srv.drops)}
	// one video and one audio track make the stream: an offer with more
	// media sections gets the rest drained (a second H264 track would race
	// the first on w, a second Opus track start a second ffmpeg)
	var haveVideo, haveAudio atomic.Bool
	ss.pc.OnTrack(func(tr *pwebrtc.TrackRemote, rcv *pwebrtc.RTPReceiver) {
		switch {
		case tr.Kind() == pwebrtc.RTPCodecTypeVideo && tr.Codec().MimeType == pwebrtc.MimeTypeH264 && haveVideo.CompareAndSwap(false, true):
			ss.log.Info("video track", "codec", "H264")
			go ss.recvH264(tr, rcv, w)
		case tr.Kind() == pwebrtc.RTPCodecTypeAudio && tr.Codec().MimeType == pwebrtc.MimeTypeOpus && ffmpegAvailable() && haveAudio.CompareAndSwap(false, true):
			go ss.recvOpus(tr, rcv, w)
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
	drops    *dropLog // the session's, both tracks
	sps, pps []byte
	started  bool // a keyframe was written
	ext      int64
	last     uint32
	first    bool
	// wantKey says the assembler waits for a keyframe (the PLI ticker
	// asks for one)
	wantKey atomic.Bool
	lastAt  time.Time // when the frame at last arrived
	// mu serialises writes to pub from the video and audio goroutines
	mu         sync.Mutex
	videoStart time.Time // when the first video frame was written
}

// frameWait is how long the WHIP frame builder waits for a missing
// packet (a NACK's retransmission included) before it drops the frame.
const frameWait = 200 * time.Millisecond

// maxReadErrors ends a session whose track read fails this many times
// in a row without a packet.
const maxReadErrors = 100

func (ss *session) recvH264(tr *pwebrtc.TrackRemote, rcv *pwebrtc.RTPReceiver, w *whipWriter) {
	pts := payloadTypes(tr, rcv, pwebrtc.MimeTypeH264)
	asm := newH264Assembler(frameWait, w.write)
	// ask for a keyframe while the assembler waits for one: at the
	// start and after every loss
	kick := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ss.ctx.Done():
				return
			case <-t.C:
				if !w.wantKey.Load() {
					continue
				}
			case <-kick:
			}
			ss.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
		}
	}()
	dl := w.drops
	dl.start()
	var seen [numDrops]uint64 // the assembler's counts dl has
	pending := false          // dl has drops not yet logged
	defer func() { dl.video(&asm.drops); dl.end() }()
	buf := make([]byte, rtpReadMTU)
	var h rtp.Header
	var deadline time.Time
	errs := 0
	for {
		n, _, err := tr.Read(buf)
		now := time.Now()
		switch {
		case err == nil:
			errs = 0
		case isTimeout(err):
			err = asm.expire(now)
			n = 0
		case errors.Is(err, io.EOF) || ss.ctx.Err() != nil:
			ss.close("video track ended: " + err.Error())
			return
		case n >= 2:
			// pion read the packet but refused it (an unknown payload
			// type): ours to count below
		default:
			if errs++; errs >= maxReadErrors {
				ss.close("video track: " + err.Error())
				return
			}
			asm.reject(dropHeader)
			n = 0
		}
		if n > 0 {
			err = pushRTP(asm, &h, buf[:n], pts, now)
		}
		if err != nil {
			ss.close("publish: " + err.Error())
			return
		}
		if want := asm.needKey; want != w.wantKey.Load() {
			w.wantKey.Store(want)
			if want {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
		// packets held behind a gap are given up at their time even
		// when nothing else comes
		if wt := asm.waiting(); !wt.Equal(deadline) {
			deadline = wt
			tr.SetReadDeadline(wt)
		}
		if asm.drops != seen {
			seen = asm.drops
			pending = dl.video(&seen)
		} else if pending {
			pending = dl.flush()
		}
	}
}

// pushRTP parses one packet and hands it to asm, refusing a bad header,
// bad padding or another payload type.
func pushRTP(asm *h264Assembler, h *rtp.Header, b []byte, pts map[uint8]bool, now time.Time) error {
	payload, reason := rtpPayload(h, b, pts)
	if reason == dropHeader {
		asm.reject(dropHeader)
		return nil
	}
	rejected := reason >= 0
	if rejected {
		asm.reject(reason)
		payload = nil
	}
	return asm.push(h.SequenceNumber, h.Timestamp, h.Marker, payload, rejected, now)
}

// rtpPayload parses one packet's header into h and returns its payload
// less padding, or why it is refused: dropHeader (h is not valid then),
// dropPadding or dropPayloadType (a type not in pts); reason is -1 for
// a packet taken.
func rtpPayload(h *rtp.Header, b []byte, pts map[uint8]bool) (payload []byte, reason int) {
	hn, err := h.Unmarshal(b)
	if err != nil {
		return nil, dropHeader
	}
	payload = b[hn:]
	if h.Padding {
		if len(payload) == 0 || payload[len(payload)-1] == 0 || int(payload[len(payload)-1]) > len(payload) {
			return nil, dropPadding
		}
		payload = payload[:len(payload)-int(payload[len(payload)-1])]
	}
	if !pts[h.PayloadType] {
		return nil, dropPayloadType
	}
	return payload, -1
}

// payloadTypes are the payload types the answer gave the track's codec
// (its first packet's included): anything else on the track is refused
// packet by packet. pion switches a track to whatever other negotiated
// codec a packet names, so the track's own is no guide later.
func payloadTypes(tr *pwebrtc.TrackRemote, rcv *pwebrtc.RTPReceiver, mime string) map[uint8]bool {
	pts := map[uint8]bool{uint8(tr.PayloadType()): true}
	for _, c := range rcv.GetParameters().Codecs {
		if c.MimeType == mime {
			pts[uint8(c.PayloadType)] = true
		}
	}
	return pts
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dropLog logs what a WHIP session dropped, by track and reason: at the
// first drop, then at most every dropLogEvery, and the totals once more
// when the session's last track ends. The video goroutine hands over its
// assembler's counts (video); the audio goroutine counts here (audio).
// Every drop is added to the server's totals as well (the metrics).
type dropLog struct {
	log    *slog.Logger
	totals *ingestDrops

	mu     sync.Mutex
	tracks int // track goroutines running
	last   time.Time
	counts [numTracks][numDrops]uint64
	logged [numTracks][numDrops]uint64
}

// The tracks a WHIP session drops packets of.
const (
	trackVideo = iota
	trackAudio
	numTracks
)

var trackNames = [numTracks]string{"video", "audio"}

const dropLogEvery = 10 * time.Second

func newDropLog(log *slog.Logger, totals *ingestDrops) *dropLog {
	return &dropLog{log: log, totals: totals}
}

// start is called as a track goroutine starts; end as it ends, with the
// totals logged after the last one.
func (d *dropLog) start() {
	d.mu.Lock()
	d.tracks++
	d.mu.Unlock()
}

func (d *dropLog) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tracks--; d.tracks == 0 && d.counts != ([numTracks][numDrops]uint64{}) {
		d.logged = [numTracks][numDrops]uint64{}
		d.logLocked()
	}
}

// video takes the video assembler's running totals; it and audio and
// flush report whether drops wait for their log (flush then logs them
// when dropLogEvery is up).
func (d *dropLog) video(drops *[numDrops]uint64) (pending bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, n := range drops {
		if old := d.counts[trackVideo][i]; n > old {
			d.totals.add(trackVideo, i, n-old)
		}
	}
	d.counts[trackVideo] = *drops
	return d.flushLocked()
}

// audio counts one dropped audio packet.
func (d *dropLog) audio(reason int) (pending bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts[trackAudio][reason]++
	d.totals.add(trackAudio, reason, 1)
	return d.flushLocked()
}

func (d *dropLog) flush() (pending bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flushLocked()
}

func (d *dropLog) flushLocked() (pending bool) {
	if d.counts == d.logged {
		return false
	}
	if time.Since(d.last) < dropLogEvery {
		return true
	}
	d.logLocked()
	return false
}

func (d *dropLog) logLocked() {
	d.last, d.logged = time.Now(), d.counts
	args := []any{}
	for tr, counts := range d.counts {
		prefix := ""
		if tr != trackVideo {
			prefix = trackNames[tr] + "_"
		}
		for i, n := range counts {
			if n > 0 {
				args = append(args, prefix+dropNames[i], n)
			}
		}
	}
	d.log.Warn("WHIP packets or frames dropped (totals by reason; audio_ keys for the audio track)", args...)
}

// ingestDrops is the server's totals of what its WHIP sessions dropped,
// by track and reason, for the metrics.
type ingestDrops [numTracks][numDrops]atomic.Uint64

func (t *ingestDrops) add(track, reason int, n uint64) { t[track][reason].Add(n) }

// maxClockSkew is how far a frame's RTP time step may differ from the
// time between the frames' arrivals before the step is taken for a
// broken clock: the frame is then timed by its arrival.
const maxClockSkew = 90000 // 1 s at 90 kHz

// write publishes one access unit (AVCC NAL units) taken at RTP time ts
// that was complete at at.
func (w *whipWriter) write(au []byte, ts uint32, at time.Time) error {
	if !w.first {
		w.first, w.last, w.lastAt = true, ts, at
		w.mu.Lock()
		w.videoStart = time.Now()
		w.mu.Unlock()
	}
	step := int64(int32(ts - w.last))
	if wall := at.Sub(w.lastAt).Microseconds() * 90 / 1000; step < 0 || step-wall > maxClockSkew || wall-step > maxClockSkew {
		// a jump of the publisher's clock (one frame's, or for good):
		// the timeline goes on by the wall clock, not by the jump
		step = max(wall, 0)
	}
	w.ext += step
	w.last, w.lastAt = ts, at
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
		if err := w.emit(unit.KindVideo, ms, hdr); err != nil {
			return err
		}
	}
	if len(frame) == tagHead || w.sps == nil || (!w.started && !key) {
		return nil // nothing decodable yet: wait for a keyframe
	}
	w.started = true
	frame[0], frame[1] = 0x27, 1 // inter frame, AVC NALU, CTS 0
	if key {
		frame[0] = 0x17
	}
	return w.emit(unit.KindVideo, ms, frame)
}

func (w *whipWriter) emit(kind unit.Kind, ms int64, body []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, err := unit.TagPacket(kind, ms, body)
	if err != nil || p == nil {
		return err
	}
	return w.pub.Write(p)
}
