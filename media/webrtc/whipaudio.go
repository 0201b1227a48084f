package webrtc

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	pwebrtc "github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/relaymesh/relaymesh/media"
)

// recvOpus transcodes a WHIP publisher's Opus to AAC for the stream's
// RTMP, SRT and HTTP-FLV readers with an ffmpeg child (Ogg Opus in, ADTS
// out) that lives as long as the session.
func (ss *session) recvOpus(tr *pwebrtc.TrackRemote, w *whipWriter) {
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
	// one buffer and packet for the session: the Ogg writer copies the
	// payload into its page before WriteRTP returns
	buf := make([]byte, rtpReadMTU)
	var pkt rtp.Packet
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		if err := ow.WriteRTP(&pkt); err != nil {
			drain(tr)
			return
		}
	}
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
				if err := w.emit(media.KindAudio, base, append([]byte{0xaf, 0}, b...)); err != nil {
					return err
				}
			}
			ms := base + frames*1024*1000/int64(p.SampleRate)
			frames++
			if err := w.emit(media.KindAudio, ms, append([]byte{0xaf, 1}, p.AU...)); err != nil {
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
