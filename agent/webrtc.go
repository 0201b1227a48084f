package agent

import (
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/listeners"
	"github.com/relaymesh/relaymesh/media/webrtc"
	"github.com/relaymesh/relaymesh/netutil"
)

// newWebRTC builds the WHEP/WHIP server when [webrtc] is enabled; it binds
// the UDP port now so "address in use" fails the start.
func (a *Agent) newWebRTC(cfg *config.Config) error {
	if !cfg.WebRTC.Enabled {
		return nil
	}
	s, err := webrtc.New(a.webrtcConfig(cfg), a.hub, a.log)
	if err != nil {
		return netutil.ListenError("webrtc.udp_listen", cfg.WebRTC.UDPListen, err)
	}
	a.webrtc = s
	a.add(s.Run, s.Close)
	return nil
}

func (a *Agent) webrtcConfig(cfg *config.Config) webrtc.Config {
	return listeners.WebRTCConfig(cfg, a.authorizer(flow.ProtoWebRTC))
}
