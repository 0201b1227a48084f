package agent

import (
	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media/hls"
)

// hlsConfig is [hls] for the HLS server, with the agent's play wait and
// authorizer.
func (a *Agent) hlsConfig(cfg *config.Config) hls.Config {
	h := cfg.HLS
	return hls.Config{
		PartDuration:   h.PartDuration.Duration(),
		SegmentCount:   h.SegmentCount,
		IdleTimeout:    h.IdleTimeout.Duration(),
		SessionTimeout: h.SessionTimeout.Duration(),
		PlayWait:       center.PlayWaitOf(cfg),
		AlwaysOn:       h.AlwaysOn,
		TokenSessions:  cfg.Auth.Play,
		Authorize:      a.authorize,
	}
}
