package config

import (
	"net"
	"net/netip"
	"strings"
	"time"
)

// WebRTCConfig is [webrtc]: WHEP playback and WHIP ingest on the [http]
// listener, with every ICE session on one UDP port.
type WebRTCConfig struct {
	Enabled bool `toml:"enabled"`
	// UDPListen is the one UDP address all ICE traffic shares.
	UDPListen string `toml:"udp_listen"`
	// AdditionalHosts are the IP addresses offered as host candidates
	// (with udp_listen's port), e.g. the node's public address behind
	// 1:1 NAT; empty = the addresses of the local interfaces.
	AdditionalHosts []string          `toml:"additional_hosts"`
	ICEServers      []ICEServerConfig `toml:"ice_servers"`
	MaxSessions     int               `toml:"max_sessions"`    // WHEP + WHIP sessions on the node; 0 = 256
	ConnectTimeout  Duration          `toml:"connect_timeout"` // a session not connected by then is dropped
}

// ICEServerConfig is one [[webrtc.ice_servers]]: a STUN or TURN server the
// node gathers candidates through and advertises to clients.
type ICEServerConfig struct {
	URLs       []string `toml:"urls"`
	Username   string   `toml:"username"`
	Credential string   `toml:"credential"`
}

// defaultWebRTCMaxSessions is also what webrtc.Config reads 0 as.
const defaultWebRTCMaxSessions = 256

func defaultWebRTC() WebRTCConfig {
	return WebRTCConfig{UDPListen: ":8189", MaxSessions: defaultWebRTCMaxSessions, ConnectTimeout: Duration(10 * time.Second)}
}

func (w *WebRTCConfig) validate(ps *cfgProblems, at cfgPath, c *Config) {
	if !w.Enabled {
		return
	}
	if c.HTTP.Listen == "" {
		ps.add(at.Key("enabled"), "WHEP and WHIP are served on the HTTP listener: set http.listen")
	}
	if w.UDPListen == "" {
		ps.add(at.Key("udp_listen"), "must not be empty while webrtc.enabled is true: write e.g. \":8189\"")
	} else if ps.listen(at.Key("udp_listen"), w.UDPListen) && cfgListenersClash(w.UDPListen, c.SRT.Listen) {
		ps.add(at.Key("udp_listen"), "%q uses the same UDP port as srt.listen (%q)", w.UDPListen, c.SRT.Listen)
	}
	for i, h := range w.AdditionalHosts {
		if a, err := netip.ParseAddr(h); err != nil || a.IsUnspecified() {
			ps.add(at.Key("additional_hosts").Index(i), "%q is not an IP address a client can reach", h)
		}
	}
	// the server reads 0 as its default, never as unlimited
	ps.countOrDefault(at.Key("max_sessions"), w.MaxSessions, defaultWebRTCMaxSessions)
	ps.positive(at.Key("connect_timeout"), w.ConnectTimeout)
	for i, s := range w.ICEServers {
		sat := at.Key("ice_servers").Index(i)
		if len(s.URLs) == 0 {
			ps.add(sat.Key("urls"), "must list at least one stun: or turn: URL")
		}
		turn := false
		for j, u := range s.URLs {
			scheme, rest, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				turn = true
			default:
				ps.add(sat.Key("urls").Index(j), "%q is not a stun:, stuns:, turn: or turns: URL", u)
				continue
			}
			hostport, _, _ := strings.Cut(rest, "?")
			if _, _, err := net.SplitHostPort(hostport); err != nil && !cfgHostRe.MatchString(hostport) {
				ps.add(sat.Key("urls").Index(j), "%q has no valid host[:port]", u)
			}
		}
		if turn && (s.Username == "" || s.Credential == "") {
			ps.add(sat.Key("username"), "a TURN server needs username and credential")
		}
	}
}
