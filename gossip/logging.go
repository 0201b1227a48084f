package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// logWriter turns memberlist's standard-library log lines into slog records.
// memberlist prefixes its lines with "[ERR]", "[WARN]", "[INFO]" or
// "[DEBUG]"; errors and warnings keep their level, the rest go to debug.
type logWriter struct {
	logger *slog.Logger
}

func newStdLogger(logger *slog.Logger) *log.Logger {
	return log.New(&logWriter{logger: logger}, "", 0)
}

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte{'\n'}) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		level, msg := parseLogLine(s)
		w.logger.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

func parseLogLine(s string) (slog.Level, string) {
	level := slog.LevelDebug
	for _, p := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[ERR]", slog.LevelError},
		{"[ERROR]", slog.LevelError},
		{"[WARN]", slog.LevelWarn},
		{"[INFO]", slog.LevelDebug},
		{"[DEBUG]", slog.LevelDebug},
		{"[TRACE]", slog.LevelDebug},
	} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			level, s = p.level, strings.TrimSpace(rest)
			break
		}
	}
	return level, s
}
