package lifecycle

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

type journalDoc struct {
	Version int      `json:"version"`
	Objects []string `json:"objects"`
}

// TestJournal: what the file holds after each kind of change, as a node
// reads it back at its next start.
func TestJournal(t *testing.T) {
	newJournal := func(t *testing.T, dir string) (*Journal, *[]string) {
		objs := &[]string{}
		f := &File{Path: filepath.Join(dir, "objects.json"), Temp: ".objects-*.json", Version: 1, Name: "objects store"}
		return &Journal{File: f, Log: slog.New(slog.DiscardHandler),
			Snapshot: func() any { return &journalDoc{Version: 1, Objects: append([]string{}, *objs...)} }}, objs
	}
	onDisk := func(t *testing.T, j *Journal) []string {
		t.Helper()
		var d journalDoc
		if err := j.File.Load(&d); err != nil {
			t.Fatal(err)
		}
		return d.Objects
	}
	t.Run("a held change is not written, the next one is", func(t *testing.T) {
		j, objs := newJournal(t, t.TempDir())
		j.Hold(true)
		*objs = append(*objs, "a")
		j.Changed("flow", "a")
		if _, err := os.Stat(j.File.Path); !os.IsNotExist(err) {
			t.Fatalf("file written while held: %v", err)
		}
		j.Hold(false)
		j.Changed("flow", "a")
		if got := onDisk(t, j); len(got) != 1 || got[0] != "a" {
			t.Fatalf("on disk %v, want [a]", got)
		}
	})
	t.Run("a write is on disk when it returns", func(t *testing.T) {
		j, objs := newJournal(t, t.TempDir())
		err := j.Write(func() error { *objs = append(*objs, "b"); return nil }, func() error { t.Error("undo called"); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if got := onDisk(t, j); len(got) != 1 || got[0] != "b" {
			t.Fatalf("on disk %v, want [b]", got)
		}
	})
	t.Run("a refused op is returned as it is", func(t *testing.T) {
		j, _ := newJournal(t, t.TempDir())
		refused := errors.New("refused")
		if err := j.Write(func() error { return refused }, nil); err != refused {
			t.Fatalf("Write = %v, want the op's error", err)
		}
	})
	t.Run("a write that cannot be saved is undone", func(t *testing.T) {
		dir := t.TempDir()
		blocker := filepath.Join(dir, "data")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		j, objs := newJournal(t, blocker) // objects.json under a file: every save fails
		undone := false
		err := j.Write(func() error { *objs = append(*objs, "c"); return nil },
			func() error { undone = true; *objs = (*objs)[:0]; return nil })
		var nse *NotSavedError
		if !errors.As(err, &nse) || !undone {
			t.Fatalf("Write = %v (undone %v), want a NotSavedError after the undo", err, undone)
		}
		if st, code := nse.HTTPStatus(); st != http.StatusServiceUnavailable || code != "not_saved" {
			t.Fatalf("HTTPStatus = %d %q, want 503 not_saved", st, code)
		}
		if len(*objs) != 0 {
			t.Fatalf("memory holds %v after the undo", *objs)
		}
	})
}
