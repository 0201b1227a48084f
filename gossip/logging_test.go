package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLogWriter(t *testing.T) {
	tests := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[ERR] memberlist: No installed keys could decrypt the message", slog.LevelError, "memberlist: No installed keys could decrypt the message"},
		{"[WARN] memberlist: Refuting a suspect message", slog.LevelWarn, "memberlist: Refuting a suspect message"},
		{"[INFO] memberlist: Marking n3 as failed", slog.LevelDebug, "memberlist: Marking n3 as failed"},
		{"[DEBUG] memberlist: Stream connection", slog.LevelDebug, "memberlist: Stream connection"},
		{"no prefix at all", slog.LevelDebug, "no prefix at all"},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			var buf bytes.Buffer
			l := newStdLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
			l.Println(tt.line)
			out := buf.String()
			if !strings.Contains(out, "level="+tt.level.String()) || !strings.Contains(out, tt.msg) {
				t.Errorf("logged %q, want level %v and message %q", out, tt.level, tt.msg)
			}
		})
	}
}
