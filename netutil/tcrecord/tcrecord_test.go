package tcrecord

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecordRoundTrip: what Write keeps, Read gives back sorted by
// interface; an empty record is kept as an empty list (found, nothing to
// remove); no file is "not found", not an error; a broken file is an
// error naming it.
func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, found, err := Read(dir); found || err != nil {
		t.Fatalf("no record: found %v, %v; want not found, no error", found, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	trees := map[string]Tree{
		"eth1": {Interface: "eth1", IfIndex: 3, Root: "1:", Kind: "htb", Installed: at},
		"eth0": {Interface: "eth0", IfIndex: 2, Root: "1:", Kind: "htb", Installed: at},
	}
	if err := Write(dir, trees); err != nil {
		t.Fatal(err)
	}
	r, found, err := Read(dir)
	if err != nil || !found || len(r.Trees) != 2 || r.Trees[0] != trees["eth0"] || r.Trees[1] != trees["eth1"] {
		t.Fatalf("read back %+v, %v, %v; want eth0 then eth1 as written", r, found, err)
	}
	if err := Write(dir, nil); err != nil {
		t.Fatal(err)
	}
	if r, found, err := Read(dir); err != nil || !found || r.Trees == nil || len(r.Trees) != 0 {
		t.Fatalf("empty record read back as %+v, %v, %v; want found and empty", r, found, err)
	}
	if err := os.WriteFile(filepath.Join(dir, File), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(dir); err == nil || !strings.Contains(err.Error(), File) {
		t.Errorf("broken record: %v, want an error naming %s", err, File)
	}
}

// TestCleanupWithoutTrees: the paths of Cleanup that touch no interface:
// an empty record needs no config; without a record the fallback is
// asked, and an unreadable config or one without [qos] removes nothing.
func TestCleanupWithoutTrees(t *testing.T) {
	noFallback := func() (string, error) { t.Error("fallback asked although the record answers"); return "", nil }
	tests := []struct {
		name     string
		record   bool
		fallback func() (string, error)
		want     string
	}{
		{"empty record", true, noFallback, "lists no tc tree; nothing to remove"},
		{"no record, config unreadable", false, func() (string, error) { return "", errors.New("bad toml") }, "the config is unreadable (bad toml); nothing removed"},
		{"no record, no [qos]", false, func() (string, error) { return "", nil }, "no [qos] in the config; nothing to remove"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.record {
				if err := Write(dir, nil); err != nil {
					t.Fatal(err)
				}
			}
			var lines []string
			ok := Cleanup(dir, tc.fallback, func(problem bool, line string) { lines = append(lines, line) })
			if !ok || len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("Cleanup = %v, %q; want ok and one line saying %q", ok, lines, tc.want)
			}
		})
	}
}
