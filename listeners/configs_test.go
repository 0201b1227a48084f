package listeners

import (
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
)

// TestConfigs pins how the config's keys reach each server: the limits'
// timeouts, the SRT options and per-stream passphrases, [hls] and
// [webrtc], and the play wait, which only a center in a cluster has.
func TestConfigs(t *testing.T) {
	for _, tt := range []struct {
		name     string
		center   bool
		playWait time.Duration
	}{
		{"standalone, no cluster", false, 0},
		{"center in a cluster", true, center.PlayWait},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.Node.Role = config.RoleCenter
			c.Cluster.Enabled = tt.center
			c.Limits.HandshakeTimeout = config.Duration(3 * time.Second)
			c.Limits.ReadTimeout = config.Duration(4 * time.Second)
			c.Limits.WriteTimeout = config.Duration(5 * time.Second)
			c.Limits.MaxConnections = 11
			c.SRT.Latency = config.Duration(300 * time.Millisecond)
			c.SRT.PublishPassphrase, c.SRT.MaxConnections = "publish-pass-1", 12
			c.SRTStreams = []config.SRTStreamConfig{{Key: "live/x", ReadPassphrase: "read-pass-123", Latency: config.Duration(time.Second)}}
			c.HLS.SegmentCount, c.Auth.Play = 9, true
			c.WebRTC.MaxSessions = 13
			c.WebRTC.ICEServers = []config.ICEServerConfig{{URLs: []string{"stun:stun.example:3478"}, Username: "u"}}
			s := New(Deps{Authorize: func(media.Access) error { return nil }, SRTStreamOptions: nil})

			r := s.rtmpConfig(c)
			if r.HandshakeTimeout != 3*time.Second || r.ReadTimeout != 4*time.Second || r.WriteTimeout != 5*time.Second ||
				r.MaxConnections != 11 || r.PlayWait != tt.playWait || r.Authorize == nil {
				t.Errorf("rtmp %+v", r)
			}
			sc := s.srtConfig(c)
			if sc.Latency != 300*time.Millisecond || sc.PublishPassphrase != "publish-pass-1" || sc.MaxConns != 12 ||
				sc.ReadTimeout != 4*time.Second || sc.PlayWait != tt.playWait {
				t.Errorf("srt %+v", sc)
			}
			if o := sc.Streams["live/x"]; o.ReadPassphrase != "read-pass-123" || o.Latency != time.Second || len(sc.Streams) != 1 {
				t.Errorf("srt streams %+v", sc.Streams)
			}
			h := HLSConfig(c, nil)
			if h.SegmentCount != 9 || !h.TokenSessions || h.PlayWait != tt.playWait {
				t.Errorf("hls %+v", h)
			}
			w := WebRTCConfig(c, nil)
			if w.MaxSessions != 13 || len(w.ICEServers) != 1 || w.ICEServers[0].URLs[0] != "stun:stun.example:3478" ||
				w.ICEServers[0].Username != "u" || w.PlayWait != tt.playWait {
				t.Errorf("webrtc %+v", w)
			}
		})
	}
}
