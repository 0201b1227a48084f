package hls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// muxer is one gohlslib muxer fed from a hub reader.
type muxer struct {
	key    muxKey
	ready  chan struct{} // closed once the gohlslib muxer started
	done   chan struct{} // closed when the muxer ended
	cancel context.CancelFunc
	last   atomic.Int64 // unix ns of the last request
	// goroutines inside a waiting gohlslib handler, each kind bounded
	// by MaxBlocked on its own (call): blocking reloads (_HLS_msn) and
	// the other playlist requests (waiting for the first segment)
	reloads, playlists atomic.Int64
	// waiting counts the requests whose client still waits for one of
	// those goroutines: only they keep the muxer from its idle close (a
	// goroutine whose client gave up waits for content that may never
	// come, and only the close releases it)
	waiting  atomic.Int64
	alwaysOn atomic.Bool

	mu  sync.Mutex
	m   *gohlslib.Muxer
	err error
}

// muxer returns the running gohlslib muxer, or nil and why it is not.
func (mx *muxer) muxer() (*gohlslib.Muxer, error) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if mx.err != nil {
		return nil, mx.err
	}
	return mx.m, nil
}

// muxer returns the muxer of key, starting one when there is none.
func (s *Server) muxer(k muxKey, cfg *Config) *muxer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mx := s.muxers[k]; mx != nil {
		return mx
	}
	return s.startLocked(k, cfg)
}

func (s *Server) startLocked(k muxKey, cfg *Config) *muxer {
	ctx, cancel := context.WithCancel(s.ctx)
	mx := &muxer{key: k, ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	if s.ctx.Err() != nil {
		// closed: a request after Close gets an ended muxer, and no
		// wg.Add races Close's wg.Wait
		mx.err = media.ErrHubClosed
		close(mx.done)
		return mx
	}
	mx.last.Store(time.Now().UnixNano())
	s.muxers[k] = mx
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.run(ctx, mx, cfg)
		s.mu.Lock()
		if s.muxers[k] == mx {
			delete(s.muxers, k)
		}
		s.mu.Unlock()
		mx.mu.Lock()
		m := mx.m
		if err == nil || errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%s: %w", k.stream, media.ErrStreamEnded)
		}
		mx.err = err
		mx.mu.Unlock()
		close(mx.done)
		if m != nil {
			m.Close()
		}
		cancel()
	}()
	return mx
}

// run feeds the muxer until the stream ends or the muxer is idle.
func (s *Server) run(ctx context.Context, mx *muxer, cfg *Config) error {
	log := s.log.With("stream", mx.key.stream, "variant", variantName(mx.key.variant))
	rd, err := s.hub.Subscribe(ctx, mx.key.stream, media.SubscribeOptions{Format: media.FormatFLV, Wait: cfg.PlayWait})
	if err != nil {
		return err
	}
	defer rd.Close()
	f := &feeder{
		variant: mx.key.variant, part: cfg.PartDuration, count: cfg.SegmentCount, firstKey: -1,
		onErr: func(err error) { log.Debug("hls muxer", "err", err.Error()) },
		started: func(m *gohlslib.Muxer) {
			mx.mu.Lock()
			mx.m = m
			mx.mu.Unlock()
			close(mx.ready)
			log.Info("hls muxer started", "part_duration", cfg.PartDuration.String())
		},
	}
	buf := make([]*unit.Packet, 0, 64)
	for {
		pkts, err := rd.Next(ctx, buf)
		hasVideo := rd.Stream().Codecs().Video != ""
		for _, p := range pkts {
			if werr := f.write(p, hasVideo); werr != nil {
				if errors.Is(werr, errCodecChanged) || errors.Is(werr, errPlainH265) || f.m == nil {
					log.Info("hls muxer ended", "reason", werr.Error())
					return werr
				}
				log.Debug("hls write", "err", werr.Error())
			}
		}
		if err != nil {
			log.Info("hls muxer ended", "reason", err.Error())
			return err
		}
	}
}

func variantName(v gohlslib.MuxerVariant) string {
	if v == gohlslib.MuxerVariantMPEGTS {
		return "plain"
	}
	return "ll"
}
