package config

import "testing"

// TestConfigWebRTC pins what [webrtc] refuses, each naming its key.
func TestConfigWebRTC(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		want []string
	}{
		{name: "off by default: nothing checked", toml: "[webrtc]\nudp_listen = \"\"\n"},
		{name: "valid", toml: "[webrtc]\nenabled = true\nadditional_hosts = [\"192.0.2.7\", \"2001:db8::7\"]\n[[webrtc.ice_servers]]\nurls = [\"stun:stun.example.net:3478\"]\n"},
		{name: "unknown key", toml: "[webrtc]\nenabled = true\nudp_port = 8189\n",
			want: []string{`c.toml:3: webrtc.udp_port: unknown key`}},
		{name: "bad udp_listen", toml: "[webrtc]\nenabled = true\nudp_listen = \"8189\"\n",
			want: []string{`c.toml:3: webrtc.udp_listen: "8189" is not host:port: write e.g. ":1935" or "127.0.0.1:1935", or "" to disable`}},
		{name: "empty udp_listen", toml: "[webrtc]\nenabled = true\nudp_listen = \"\"\n",
			want: []string{`c.toml:3: webrtc.udp_listen: must not be empty while webrtc.enabled is true: write e.g. ":8189"`}},
		{name: "same UDP port as SRT", toml: "[srt]\nlisten = \":9000\"\n[webrtc]\nenabled = true\nudp_listen = \"0.0.0.0:9000\"\n",
			want: []string{`c.toml:5: webrtc.udp_listen: "0.0.0.0:9000" uses the same UDP port as srt.listen (":9000")`}},
		{name: "host not an IP", toml: "[webrtc]\nenabled = true\nadditional_hosts = [\"node1.example.net\"]\n",
			want: []string{`c.toml:3: webrtc.additional_hosts[0]: "node1.example.net" is not an IP address a client can reach`}},
		{name: "negative max_sessions", toml: "[webrtc]\nenabled = true\nmax_sessions = -1\n",
			want: []string{`c.toml:3: webrtc.max_sessions: -1 is negative: use 0 for the default (256)`}},
		{name: "bad ICE URL", toml: "[webrtc]\nenabled = true\n[[webrtc.ice_servers]]\nurls = [\"http://stun.example.net\"]\n",
			want: []string{`c.toml:4: webrtc.ice_servers[0].urls[0]: "http://stun.example.net" is not a stun:, stuns:, turn: or turns: URL`}},
		{name: "TURN without credentials", toml: "[webrtc]\nenabled = true\n[[webrtc.ice_servers]]\nurls = [\"turn:turn.example.net:3478\"]\n",
			want: []string{`c.toml:3: webrtc.ice_servers[0].username: a TURN server needs username and credential`}},
		{name: "needs the HTTP listener", toml: "[http]\nlisten = \"\"\n[webrtc]\nenabled = true\n",
			want: []string{`c.toml:4: webrtc.enabled: WHEP and WHIP are served on the HTTP listener: set http.listen`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLoadProblems(t, tc.toml, tc.want)
		})
	}
}
