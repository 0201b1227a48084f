package webrtc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/relaymesh/relaymesh/media/unit"
)

// recvOpus transcodes a WHIP publisher's Opus to AAC for the stream's
// RTMP, SRT and HTTP-FLV readers with an ffmpeg child (Ogg Opus in, ADTS
// out) that lives as long as the session. A bad packet costs only itself:
// one with another payload type (unknown, or another negotiated codec's),
// bad padding or that is not an Opus packet is counted in the session's
// drop log and skipped.
func (ss *session) recvOpus(tr *pwebrtc.TrackRemote, rcv *pwebrtc.RTPReceiver, w *whipWriter) {
	pts := payloadTypes(tr, rcv, pwebrtc.MimeTypeOpus)
	cmd := exec.CommandContext(ss.ctx, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-probesize", "4096", "-analyzeduration", "0", "-fflags", "nobuffer", "-f", "ogg", "-i", "pipe:0",
		"-vn", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "adts", "-flush_packets", "1", "pipe:1")
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err1 != nil || err2 != nil || cmd.Start() != nil {
		ss.log.Warn("audio not transcoded: ffmpeg did not start")
		drain(tr)
		return
	}
	ss.log.Info("transcoding Opus to AAC")
	reaped := make(chan struct{})
	ss.onClose(func() { <-reaped }) // the child is killed with ss.ctx; close reaps it
	go func() {
		defer close(reaped)
		err := ss.readADTS(stdout, w)
		stdout.Close() // ffmpeg's next write fails and it exits
		cmd.Wait()
		if ss.ctx.Err() == nil {
			ss.log.Warn("audio transcoder stopped", "err", errString(err), "ffmpeg", stderr.String())
		}
	}()
	ow, err := oggwriter.NewWith(stdin, 48000, 2)
	if err != nil {
		stdin.Close()
		drain(tr)
		return
	}
	defer ow.Close()
	dl := w.drops
	dl.start()
	defer dl.end()
	// one buffer and packet for the session: the Ogg writer copies the
	// payload into its page before WriteRTP returns
	buf := make([]byte, rtpReadMTU)
	var pkt rtp.Packet
	errs := 0
	pending := false // dl has drops not yet logged
	for {
		n, _, err := tr.Read(buf)
		switch {
		case err == nil:
			errs = 0
		case errors.Is(err, io.EOF) || ss.ctx.Err() != nil:
			return
		case n >= 2:
			// pion read the packet but refused it (an unknown payload
			// type): ours to count below
		default:
			if errs++; errs >= maxReadErrors {
				ss.log.Warn("audio track ended", "err", err.Error())
				return
			}
			pending = dl.audio(dropHeader)
			continue
		}
		payload, reason := rtpPayload(&pkt.Header, buf[:n], pts)
		if reason < 0 && !opusValid(payload) {
			reason = dropBadOpus
		}
		if reason >= 0 {
			pending = dl.audio(reason)
			continue
		}
		if pending {
			pending = dl.flush()
		}
		pkt.Payload = payload
		if err := ow.WriteRTP(&pkt); err != nil {
			drain(tr)
			return
		}
	}
}

// opusValid reports whether p is a well-formed Opus packet: RFC 6716
// section 3.4's requirements R1 to R7 (at least the TOC byte, frame
// lengths within the packet and 1275 bytes, at most 120 ms in one).
func opusValid(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	const maxFrame = 1275
	rest := p[1:]
	switch p[0] & 3 {
	case 0:
		return len(rest) <= maxFrame
	case 1:
		return len(rest)%2 == 0 && len(rest)/2 <= maxFrame
	case 2:
		n, k, ok := opusFrameLen(rest)
		return ok && n <= len(rest)-k && len(rest)-k-n <= maxFrame
	}
	if len(rest) == 0 {
		return false
	}
	fc := rest[0]
	rest = rest[1:]
	m := int(fc & 0x3f)
	if m == 0 || opus.PacketDuration2(p) > 48000*120/1000 {
		return false
	}
	if fc&0x40 != 0 { // padding: 255 is 254 bytes and another length byte
		pad := 0
		for {
			if len(rest) == 0 {
				return false
			}
			b := rest[0]
			rest = rest[1:]
			if b < 255 {
				pad += int(b)
				break
			}
			pad += 254
		}
		if pad > len(rest) {
			return false
		}
		rest = rest[:len(rest)-pad]
	}
	if fc&0x80 == 0 { // constant bitrate: m frames of one size
		return len(rest)%m == 0 && len(rest)/m <= maxFrame
	}
	total := 0
	for range m - 1 {
		n, k, ok := opusFrameLen(rest)
		if !ok || n > maxFrame {
			return false
		}
		rest = rest[k:]
		total += n
	}
	return total <= len(rest) && len(rest)-total <= maxFrame
}

// opusFrameLen reads one frame length (one byte, or two from 252 up).
func opusFrameLen(b []byte) (n, size int, ok bool) {
	switch {
	case len(b) == 0:
		return 0, 0, false
	case b[0] < 252:
		return int(b[0]), 1, true
	case len(b) < 2:
		return 0, 0, false
	}
	return int(b[0]) + 4*int(b[1]), 2, true
}

// readADTS publishes ffmpeg's AAC frames, timed from when the audio
// started against the video's clock (WebRTC gives the two tracks no
// common timeline before RTCP sender reports).
func (ss *session) readADTS(r io.Reader, w *whipWriter) error {
	br := bufio.NewReader(r)
	var hdr [7]byte
	var base int64
	var frames int64
	started := false
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := int(hdr[3]&3)<<11 | int(hdr[4])<<3 | int(hdr[5])>>5
		if hdr[0] != 0xff || hdr[1]&0xf0 != 0xf0 || n < 7 {
			return io.ErrUnexpectedEOF
		}
		buf := make([]byte, n)
		copy(buf, hdr[:])
		if _, err := io.ReadFull(br, buf[7:]); err != nil {
			return err
		}
		var pkts mpeg4audio.ADTSPackets
		if pkts.Unmarshal(buf) != nil {
			continue
		}
		for _, p := range pkts {
			if !started {
				started = true
				base = w.sinceVideo()
				asc := mpeg4audio.AudioSpecificConfig{Type: p.Type, SampleRate: p.SampleRate, ChannelConfig: p.ChannelConfig}
				b, err := asc.Marshal()
				if err != nil {
					return err
				}
				if err := w.emit(unit.KindAudio, base, append([]byte{0xaf, 0}, b...)); err != nil {
					return err
				}
			}
			ms := base + frames*1024*1000/int64(p.SampleRate)
			frames++
			if err := w.emit(unit.KindAudio, ms, append([]byte{0xaf, 1}, p.AU...)); err != nil {
				return err
			}
		}
	}
}

// sinceVideo is the stream time now on the video's clock (0 before video).
func (w *whipWriter) sinceVideo() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.videoStart.IsZero() {
		return 0
	}
	return time.Since(w.videoStart).Milliseconds()
}
