package events

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestLog pins the log line of each stream event and that other events
// are not logged here.
func TestLog(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string // "" for no line
	}{
		{"published", StreamPublished{Stream: "live/a", Protocol: "rtmp", Remote: "10.0.0.1:5000"},
			`level=INFO msg="stream published" stream=live/a protocol=rtmp remote=10.0.0.1:5000` + "\n"},
		{"reconnected", StreamReconnected{Stream: "live/a", Protocol: "srt", Remote: "10.0.0.1:5001", Takeover: true},
			`level=INFO msg="stream publisher reconnected" stream=live/a protocol=srt remote=10.0.0.1:5001 takeover=true` + "\n"},
		{"ended", StreamEnded{Stream: "live/a", Reason: "publisher gone"},
			`level=INFO msg="stream ended" stream=live/a reason="publisher gone"` + "\n"},
		{"member joined is not a stream event", MemberJoined{Member: Member{Name: "n2"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			drop := func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}
			Log(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: drop})))(Record{Event: tt.ev})
			if b.String() != tt.want {
				t.Errorf("logged %q, want %q", b.String(), tt.want)
			}
		})
	}
}
