package flow

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
)

func TestAuthorize(t *testing.T) {
	m := NewManager(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), lifecycle.Env{})
	specs := []Spec{
		{ID: "cam", Source: Source{Type: SrcRTMPPush, Stream: "live/cam", Allow: []string{"10.1.0.0/16"}},
			Backup: &Source{Type: SrcSRTListener, Stream: "live/cam-b", Allow: []string{"10.2.0.0/16"}},
			Outputs: []Output{
				{Name: "rtmp", Type: OutRTMPPull, Allow: []string{"192.0.2.0/24"}},
				{Name: "web", Type: OutHTTPFLV, Allow: []string{"192.0.2.0/24", "198.51.100.0/24"}},
				{Name: "srt-a", Type: OutSRTListener, Allow: []string{"203.0.113.1"}},
				{Name: "srt-b", Type: OutSRTListener, Allow: []string{"203.0.113.2"}},
			}},
		{ID: "open", Source: Source{Type: SrcRTMPPush, Stream: "live/open"},
			Outputs: []Output{{Name: "p", Type: OutRTMPPull}}},
		{ID: "push-only", Source: Source{Type: SrcRTMPPull, URL: "rtmp://192.0.2.9/a/b"},
			Outputs: []Output{{Name: "o", Type: OutRTMPPush, URL: "rtmp://192.0.2.9/c/d"}}},
	}
	for _, s := range specs {
		if err := m.Create(s, lifecycle.CreateOpts{From: lifecycle.FromStore, State: lifecycle.Standby}); err != nil {
			t.Fatal(err)
		}
	}
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	udp := func(ip string) net.Addr { return &net.UDPAddr{IP: net.ParseIP(ip), Port: 40000} }
	cases := []struct {
		name, action, proto, key string
		remote                   net.Addr
		refusal                  string // "" = admitted
	}{
		{"publish primary from its allow", "publish", ProtoRTMP, "live/cam", tcp("10.1.2.3"), ""},
		{"publish primary from outside", "publish", ProtoRTMP, "live/cam", tcp("10.2.2.3"), `flow "cam" source "primary"`},
		{"publish backup from its allow", "publish", ProtoSRT, "live/cam-b", udp("10.2.0.9"), ""},
		{"publish backup from outside", "publish", ProtoSRT, "live/cam-b", udp("10.1.0.9"), `flow "cam" source "backup"`},
		{"publish a stream of no flow", "publish", ProtoRTMP, "live/other", tcp("8.8.8.8"), ""},
		{"publish an open source", "publish", ProtoRTMP, "live/open", tcp("8.8.8.8"), ""},
		{"rtmp play in the rtmp-pull allow", "play", ProtoRTMP, "flow/cam", tcp("192.0.2.7"), ""},
		{"rtmp play only in the httpflv allow", "play", ProtoRTMP, "flow/cam", tcp("198.51.100.7"), `output "rtmp"`},
		{"httpflv play in the httpflv allow", "play", ProtoHTTPFLV, "flow/cam", tcp("198.51.100.7"), ""},
		{"hls play in the httpflv allow", "play", ProtoHLS, "flow/cam", tcp("198.51.100.7"), ""},
		{"hls play outside the httpflv allow", "play", ProtoHLS, "flow/cam", tcp("203.0.113.2"), `output "web"`},
		{"hls play of a flow without httpflv output", "play", ProtoHLS, "flow/open", tcp("192.0.2.7"), "no httpflv output"},
		{"webrtc play in the httpflv allow", "play", ProtoWebRTC, "flow/cam", tcp("198.51.100.7"), ""},
		{"webrtc play outside the httpflv allow", "play", ProtoWebRTC, "flow/cam", tcp("203.0.113.2"), `output "web"`},
		{"srt play in the second srt output", "play", ProtoSRT, "flow/cam", udp("203.0.113.2"), ""},
		{"srt play in no srt output", "play", ProtoSRT, "flow/cam", udp("192.0.2.7"), `"srt-a", "srt-b"`},
		{"srt play of a flow without srt output", "play", ProtoSRT, "flow/open", udp("192.0.2.7"), "no srt-listener output"},
		{"play of a push-only flow", "play", ProtoRTMP, "flow/push-only", tcp("192.0.2.7"), "no rtmp-pull output"},
		{"play of an open output", "play", ProtoRTMP, "flow/open", tcp("8.8.8.8"), ""},
		{"play of another stream", "play", ProtoRTMP, "live/cam", tcp("8.8.8.8"), ""},
		{"play of an unknown flow", "play", ProtoRTMP, "flow/nope", tcp("8.8.8.8"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := m.Authorize(media.Access{Protocol: c.proto, Action: c.action, Key: c.key, Remote: c.remote})
			switch {
			case c.refusal == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refusal != "" && err == nil:
				t.Fatalf("admitted, want a refusal naming %s", c.refusal)
			case c.refusal != "" && !strings.Contains(err.Error(), c.refusal):
				t.Fatalf("refusal %q does not name %s", err, c.refusal)
			}
		})
	}
}
