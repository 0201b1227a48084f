package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	pwebrtc "github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// aacToOpus transcodes one stream's AAC to Opus with an ffmpeg child
// (ADTS in on stdin, Ogg Opus out on stdout, one 20 ms packet per page)
// for all its WHEP sessions (opusShare); video never goes through it.
type aacToOpus struct {
	in   chan []byte
	done chan struct{}
	log  *slog.Logger
}

// ffmpegAvailable reports whether audio can be transcoded on this host.
func ffmpegAvailable() bool {
	_, err := exec.LookPath("ffmpeg")
	return err == nil
}

// sent is told the size of each Opus packet written to track.
func startAACToOpus(ctx context.Context, log *slog.Logger, track *pwebrtc.TrackLocalStaticSample, sent func(n int)) (*aacToOpus, error) {
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer", "-f", "aac", "-i", "pipe:0",
		"-vn", "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2",
		"-application", "lowdelay", "-frame_duration", "20",
		"-f", "ogg", "-page_duration", "20000", "-flush_packets", "1", "pipe:1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ffmpeg for AAC->Opus: %w", err)
	}
	t := &aacToOpus{in: make(chan []byte, 128), done: make(chan struct{}), log: log}
	go func() {
		defer stdin.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-t.in:
				if _, err := stdin.Write(b); err != nil {
					return
				}
			}
		}
	}()
	go func() {
		defer close(t.done)
		err := t.readOgg(stdout, track, sent)
		cmd.Wait()
		if ctx.Err() == nil {
			log.Warn("audio transcoder stopped", "err", errString(err), "ffmpeg", stderr.String())
		}
	}()
	return t, nil
}

// wait returns once the ffmpeg child has exited and been reaped (it is
// killed when its context ends).
func (t *aacToOpus) wait() { <-t.done }

func (t *aacToOpus) readOgg(r io.Reader, track *pwebrtc.TrackLocalStaticSample, sent func(n int)) error {
	ogg, _, err := oggreader.NewWith(r)
	if err != nil {
		return err
	}
	var last uint64
	for {
		page, hdr, err := ogg.ParseNextPage()
		if err != nil {
			return err
		}
		if _, ok := hdr.HeaderType(page); ok {
			continue // OpusTags
		}
		d := 20 * time.Millisecond
		if last != 0 && hdr.GranulePosition > last {
			d = time.Duration(hdr.GranulePosition-last) * time.Second / 48000
		}
		last = hdr.GranulePosition
		if len(page) == 0 {
			continue
		}
		// the track is bound to every session of the stream: a write
		// error is one session's closed connection, not the others'
		_ = track.WriteSample(pmedia.Sample{Data: page, Duration: d})
		sent(len(page))
	}
}

// push queues one AAC frame (raw, as in FLV) framed as ADTS; a full queue
// drops it rather than hold up the video.
func (t *aacToOpus) push(asc *mpeg4audio.AudioSpecificConfig, au []byte) {
	b, err := mpeg4audio.ADTSPackets{{Type: asc.Type, SampleRate: asc.SampleRate, ChannelConfig: asc.ChannelConfig, AU: au}}.Marshal()
	if err != nil {
		return
	}
	select {
	case t.in <- b:
	default:
	}
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func errString(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "end of output"
	}
	return err.Error()
}
