package agent

import (
	"context"
	"net"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/media/srt"
)

// newSRT builds the SRT listener when [srt] listen is set.
func (a *Agent) newSRT(cfg *Config) error {
	if cfg.SRT.Listen == "" {
		return nil
	}
	s, err := srt.New(a.srtConfig(cfg), a.hub, a.log)
	if err != nil {
		return err
	}
	a.srt = s
	a.add(s.Run, s.Close)
	return nil
}

func (a *Agent) srtConfig(cfg *Config) srt.Config {
	streams := map[string]srt.StreamOptions{}
	for _, s := range cfg.SRTStreams {
		streams[s.Key] = srt.StreamOptions{PublishPassphrase: s.PublishPassphrase, ReadPassphrase: s.ReadPassphrase}
	}
	for key, f := range a.flowSRTStreams(cfg) {
		o := streams[key]
		if f.PublishPassphrase != "" {
			o.PublishPassphrase = f.PublishPassphrase
		}
		if f.ReadPassphrase != "" {
			o.ReadPassphrase = f.ReadPassphrase
		}
		streams[key] = o
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
		PlayWait:          a.playWait(cfg),
		Authorize: func(_ context.Context, action, key, token string, remote net.Addr) error {
			if action == srt.ActionRead {
				action = auth.ActionPlay
			}
			q := ""
			if token != "" {
				q = auth.QueryParam + "=" + token
			}
			return a.authorize("srt", action, key, q, remote)
		},
	}
}

// flowSRTStreams are the flows' per-stream SRT options: every flow's once
// the flows are loaded, the config's [[flow]]s before.
func (a *Agent) flowSRTStreams(cfg *Config) map[string]flow.SRTStream {
	if fl := a.ext.objects.flows; fl != nil {
		return fl.SRTStreams()
	}
	out := map[string]flow.SRTStream{}
	for i := range cfg.Flows {
		spec := cfg.Flows[i].spec()
		for _, st := range spec.SRTStreams() {
			if _, taken := out[st.Key]; !taken {
				out[st.Key] = st
			}
		}
	}
	return out
}

// srtStats returns per-connection SRT statistics of a stream for the API.
func (a *Agent) srtStats(key string) []any {
	srv := a.listeners().srt
	if srv == nil {
		return nil
	}
	var out []any
	for _, st := range srv.Stats() {
		if st.Stream == key {
			out = append(out, st)
		}
	}
	return out
}

func srtWarnings(cfg *Config) []string {
	if cfg.SRT.Listen == "" {
		return nil
	}
	if w := srt.CheckUDPBuffers(); w != "" {
		return []string{w}
	}
	return nil
}
