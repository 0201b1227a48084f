package agent

import (
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/netutil"
)

// newSRT builds the SRT listener when [srt] listen is set.
func (a *Agent) newSRT(cfg *config.Config) error {
	if cfg.SRT.Listen == "" {
		return nil
	}
	s, err := srt.New(a.srtConfig(cfg), a.hub, a.log)
	if err != nil {
		return netutil.ListenError("srt.listen", cfg.SRT.Listen, err)
	}
	a.srt = s
	a.add(s.Run, s.Close)
	return nil
}

func (a *Agent) srtConfig(cfg *config.Config) srt.Config {
	streams := map[string]srt.StreamOptions{}
	for _, s := range cfg.SRTStreams {
		streams[s.Key] = srt.StreamOptions{PublishPassphrase: s.PublishPassphrase, ReadPassphrase: s.ReadPassphrase, Latency: s.Latency.Duration()}
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
		StreamOptionsFor: func(action, key string) (srt.StreamOptions, bool) {
			if f := a.objects.flows; f != nil { // srt-listener sources and outputs: their passphrase and latency
				return f.SRTStreamOptions(action, key)
			}
			return srt.StreamOptions{}, false
		},
		PlayWait:  center.PlayWaitOf(cfg),
		Authorize: a.authorize,
	}
}

// srtStats returns per-connection SRT statistics of a stream for the API.
func (a *Agent) srtStats(key string) []srt.ConnStats {
	srv := a.listeners().srt
	if srv == nil {
		return nil
	}
	var out []srt.ConnStats
	for _, st := range srv.Stats() {
		if st.Stream == key {
			out = append(out, st)
		}
	}
	return out
}

func srtWarnings(cfg *config.Config) []string {
	if cfg.SRT.Listen == "" {
		return nil
	}
	if w := srt.CheckUDPBuffers(); w != "" {
		return []string{w}
	}
	return nil
}
