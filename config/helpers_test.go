package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkLoadProblems writes toml to a c.toml in a fresh directory and
// loads it. With no want, Load must succeed; otherwise its error must
// consist of exactly the want lines (any order, the path shown as c.toml).
func checkLoadProblems(t *testing.T, toml string, want []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Load: %v, want success", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Load succeeded, want %q", want)
	}
	lines := strings.Split(strings.ReplaceAll(err.Error(), path, "c.toml"), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("error lacks line\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n  %s", len(lines), len(want), strings.Join(lines, "\n  "))
	}
}
