package control

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
)

// serve runs a control socket in a temp dir until the test ends.
func serve(t *testing.T, reload ReloadFunc) string {
	t.Helper()
	dir := t.TempDir()
	s, err := New(dir, reload)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close after Run: %v", err)
		}
	})
	return dir
}

// TestReload: client.Reload gets the reload's verdict over the socket: an
// applied reload, a refused one with its problems one per line, and one
// asked for while the agent stops.
func TestReload(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want client.ReloadVerdict
	}{
		{"applied", nil, client.ReloadVerdict{Reloaded: true}},
		{"refused", errors.Join(errors.New("rtmp.listen: bad"), errors.New("srt.latency: bad")),
			client.ReloadVerdict{Problems: []string{"rtmp.listen: bad", "srt.latency: bad"}}},
		{"stopping", fmt.Errorf("reload: %w", ErrStopping), client.ReloadVerdict{Problems: []string{"the agent is shutting down"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := serve(t, func(context.Context) error { return tc.err })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := client.Reload(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			if v.Reloaded != tc.want.Reloaded || !slices.Equal(v.Problems, tc.want.Problems) {
				t.Errorf("verdict %+v, want %+v", v, tc.want)
			}
		})
	}
}

// TestSecondAgentRefused: a socket that answers belongs to a running
// agent; a second one with the same directory is refused and the first
// keeps answering.
func TestSecondAgentRefused(t *testing.T) {
	dir := serve(t, func(context.Context) error { return nil })
	if _, err := New(dir, nil); err == nil || !strings.Contains(err.Error(), "another relaymesh agent answers there") {
		t.Fatalf("second New = %v, want another agent answers there", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v, err := client.Reload(ctx, dir); err != nil || !v.Reloaded {
		t.Errorf("first socket after the refused second: %+v, %v", v, err)
	}
}
