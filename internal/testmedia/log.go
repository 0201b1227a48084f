package testmedia

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// LogBuffer is a log sink that tests read while the code under test
// writes to it from other goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a debug-level JSON logger (the agent's format) writing
// into a new LogBuffer, which the test can search and which is printed,
// headed by name, when the test fails.
func Logger(t testing.TB, name string) (*slog.Logger, *LogBuffer) {
	t.Helper()
	buf := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, buf.String())
		}
	})
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}
