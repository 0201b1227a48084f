package listeners

import (
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/hls"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/webrtc"
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
		Budget:            s.d.SRTBudget,
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

// HubConfig is [limits] for the stream hub: the defaults with the
// configured limits (a max_reader_lag of 0 keeps the default).
func HubConfig(cfg *config.Config) media.HubConfig {
	h, l := media.DefaultHubConfig(), cfg.Limits
	h.MaxPublishers = l.MaxPublishers
	h.MaxReaders = l.MaxReadersPerStream
	h.MaxBitrate = int64(l.MaxBitrate)
	h.ReconnectGrace = l.ReconnectGrace.Duration()
	h.Takeover = l.Takeover
	if d := l.MaxReaderLag.Duration(); d > 0 {
		h.MaxReaderLag = d
	}
	// No time bound on the slack before the GOP (RingSlackTime): it would
	// make a reader that max_reader_lag allows to be behind skip anyway
	// (a 300 ms bound cut an audio-only player, whose every packet starts
	// a "GOP", and a player stalled 1.5 s under max_reader_lag = 60s).
	// The slack stays bounded by RingSlack bytes.
	return h
}

// HLSConfig is [hls] for the HLS server on the HTTP listener.
func HLSConfig(cfg *config.Config, authorize media.Authorizer) hls.Config {
	h := cfg.HLS
	return hls.Config{
		PartDuration:   h.PartDuration.Duration(),
		SegmentCount:   h.SegmentCount,
		IdleTimeout:    h.IdleTimeout.Duration(),
		SessionTimeout: h.SessionTimeout.Duration(),
		PlayWait:       center.PlayWaitOf(cfg),
		AlwaysOn:       h.AlwaysOn,
		TokenSessions:  cfg.Auth.Play,
		Authorize:      authorize,
	}
}

// WebRTCConfig is [webrtc] for the WHEP/WHIP server, whose signalling
// rides on the HTTP listener.
func WebRTCConfig(cfg *config.Config, authorize webrtc.Authorizer) webrtc.Config {
	w := cfg.WebRTC
	c := webrtc.Config{
		UDPListen:      w.UDPListen,
		Hosts:          w.AdditionalHosts,
		MaxSessions:    w.MaxSessions,
		ConnectTimeout: w.ConnectTimeout.Duration(),
		PlayWait:       center.PlayWaitOf(cfg),
		Authorize:      authorize,
	}
	for _, s := range w.ICEServers {
		c.ICEServers = append(c.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return c
}
