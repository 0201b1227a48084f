package listeners

import (
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/srt"
)

func (s *Set) rtmpConfig(cfg *config.Config) rtmp.Config {
	return rtmp.Config{
		Listen:           cfg.RTMP.Listen,
		HandshakeTimeout: cfg.Limits.HandshakeTimeout.Duration(),
		ReadTimeout:      cfg.Limits.ReadTimeout.Duration(),
		WriteTimeout:     cfg.Limits.WriteTimeout.Duration(),
		MaxConnections:   cfg.Limits.MaxConnections,
		PlayWait:         center.PlayWaitOf(cfg),
		WriteCoalesce:    cfg.Limits.WriteCoalesce.Duration(),
		Authorize:        s.d.Authorize,
	}
}

func (s *Set) httpflvConfig(cfg *config.Config) httpflv.Config {
	return httpflv.Config{
		Listen:         cfg.HTTP.Listen,
		WriteTimeout:   cfg.Limits.WriteTimeout.Duration(),
		HeaderTimeout:  cfg.Limits.HandshakeTimeout.Duration(),
		MaxConnections: cfg.Limits.MaxConnections,
		PlayWait:       center.PlayWaitOf(cfg),
		WriteCoalesce:  cfg.Limits.WriteCoalesce.Duration(),
		Authorize:      s.d.Authorize,
		Next:           s.d.Routes(),
	}
}

func (s *Set) srtConfig(cfg *config.Config) srt.Config {
	streams := map[string]srt.StreamOptions{}
	for _, o := range cfg.SRTStreams {
		streams[o.Key] = srt.StreamOptions{PublishPassphrase: o.PublishPassphrase, ReadPassphrase: o.ReadPassphrase, Latency: o.Latency.Duration()}
	}
	return srt.Config{
		Listen:            cfg.SRT.Listen,
		Latency:           cfg.SRT.Latency.Duration(),
		PublishPassphrase: cfg.SRT.PublishPassphrase,
		ReadPassphrase:    cfg.SRT.ReadPassphrase,
		PeerIdleTimeout:   cfg.SRT.PeerIdleTimeout.Duration(),
		ReadTimeout:       cfg.Limits.ReadTimeout.Duration(),
		WriteTimeout:      cfg.Limits.WriteTimeout.Duration(),
		MaxConns:          cfg.SRT.MaxConnections,
		Streams:           streams,
		StreamOptionsFor:  s.d.SRTStreamOptions,
		PlayWait:          center.PlayWaitOf(cfg),
		Authorize:         s.d.Authorize,
	}
}

// Warnings are problems of the machine for the listeners cfg asks for
// (`relaymesh check`): UDP buffers too small for SRT.
func Warnings(cfg *config.Config) []string {
	if cfg.SRT.Listen == "" {
		return nil
	}
	if w := srt.CheckUDPBuffers(); w != "" {
		return []string{w}
	}
	return nil
}
