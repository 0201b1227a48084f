package webrtc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// opusShare is one stream's AAC->Opus transcoder, shared by every WHEP
// session of the stream that takes Opus: one ffmpeg child per stream
// (per AudioSpecificConfig), not per reader. Its Opus goes to one
// TrackLocalStaticSample bound to every session's peer connection; pion
// gives each binding its own SSRC and payload type. It is made with the
// first session and ends, its child killed and reaped, with the last.
//
// The AAC comes from one member's reader (the feeder, whichever member
// pushes first); when the feeder leaves, the next member to push feeds.
type opusShare struct {
	srv   *Server
	key   string
	log   *slog.Logger
	track *pwebrtc.TrackLocalStaticSample

	members int // guarded by srv.mu

	// readers are the members' readers, whose BytesOut count the Opus
	// sent to them; rmu is its own lock, as sh.mu is held while the
	// transcoder (which counts) is stopped
	rmu     sync.Mutex
	readers map[*session]*media.Reader

	mu      sync.Mutex
	stopped bool // the last member left
	feeder  *session
	asc     *mpeg4audio.AudioSpecificConfig
	ascRaw  []byte
	failed  bool // the transcoder did not start for this config
	conv    *aacToOpus
	cancel  context.CancelFunc
}

// joinOpus returns the stream's shared Opus track, making it (not yet
// the transcoder: that waits for the first AAC frame) with the first
// session; the session leaves the share when it closes. rd is the
// session's reader: the Opus sent to the session is counted in it.
func (s *Server) joinOpus(ss *session, rd *media.Reader) (*opusShare, error) {
	s.mu.Lock()
	sh := s.opus[ss.key]
	if sh == nil {
		track, err := pwebrtc.NewTrackLocalStaticSample(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "relaymesh")
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("audio track: %w", err)
		}
		sh = &opusShare{srv: s, key: ss.key, log: s.log.With("stream", ss.key), track: track, readers: map[*session]*media.Reader{}}
		s.opus[ss.key] = sh
	}
	sh.members++
	s.mu.Unlock()
	sh.rmu.Lock()
	sh.readers[ss] = rd
	sh.rmu.Unlock()
	// outside s.mu: on a session already closed it runs at once
	ss.onClose(func() { sh.leave(ss) })
	return sh, nil
}

// leave drops one member; the last one stops the transcoder and returns
// once its ffmpeg child has exited.
func (sh *opusShare) leave(ss *session) {
	sh.srv.mu.Lock()
	sh.members--
	last := sh.members == 0
	if last && sh.srv.opus[sh.key] == sh {
		delete(sh.srv.opus, sh.key)
	}
	sh.srv.mu.Unlock()
	sh.rmu.Lock()
	delete(sh.readers, ss)
	sh.rmu.Unlock()
	sh.mu.Lock()
	if sh.feeder == ss {
		sh.feeder = nil
	}
	if last {
		sh.stopped = true
		sh.stopLocked()
	}
	sh.mu.Unlock()
}

// stopLocked kills the running child, if any, and waits for it.
func (sh *opusShare) stopLocked() {
	if sh.conv == nil {
		return
	}
	sh.cancel()
	sh.conv.wait()
	sh.conv, sh.cancel = nil, nil
}

// push takes one FLV audio packet from a member's reader; only the
// feeder's packets are transcoded (every member reads the same stream).
func (sh *opusShare) push(ss *session, p *unit.Packet) {
	a, ok := unit.ParseAudioTag(p.Payload)
	if !ok || a.Codec != "AAC" {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.stopped {
		return // the last member left: nothing to feed
	}
	if sh.feeder == nil {
		sh.feeder = ss
	}
	if sh.feeder != ss {
		return
	}
	if a.Header {
		if bytes.Equal(a.Data, sh.ascRaw) {
			return
		}
		var c mpeg4audio.AudioSpecificConfig
		if c.Unmarshal(a.Data) != nil {
			return
		}
		// a new config (a new publisher): a new child for it
		sh.stopLocked()
		sh.asc, sh.ascRaw, sh.failed = &c, bytes.Clone(a.Data), false
		return
	}
	if sh.asc == nil || sh.failed || len(a.Data) == 0 {
		return
	}
	if sh.conv == nil {
		ctx, cancel := context.WithCancel(context.Background())
		t, err := startAACToOpus(ctx, sh.log, sh.track, sh.sent)
		if err != nil {
			cancel()
			sh.log.Warn("audio not transcoded", "err", err.Error())
			sh.failed = true // no retry per packet: until the next AudioSpecificConfig
			return
		}
		sh.conv, sh.cancel = t, cancel
		sh.log.Info("transcoding AAC to Opus for the stream's WebRTC readers", "sample_rate", sh.asc.SampleRate, "channels", sh.asc.ChannelConfig)
	}
	sh.conv.push(sh.asc, a.Data)
}

// sent counts one Opus packet of n bytes (the RTP payload) written to the
// shared track in the reader of every member whose peer connection is up:
// the track sends it to each of them.
func (sh *opusShare) sent(n int) {
	sh.rmu.Lock()
	defer sh.rmu.Unlock()
	for ss, rd := range sh.readers {
		select {
		case <-ss.connected:
			rd.BytesOut.Add(uint64(n))
		default:
		}
	}
}
