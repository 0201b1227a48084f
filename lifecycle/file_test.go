package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFile: a missing file loads as nothing, a saved one loads back, a
// damaged or other-version one is refused with its path, and stale temp
// files are removed.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	f := &File{Path: filepath.Join(dir, "x.json"), Temp: ".x-*.json", Version: 2, Name: "x store", Damaged: "move it away"}
	type doc struct {
		Version int      `json:"version"`
		Items   []string `json:"items"`
	}
	var d doc
	if err := f.Load(&d); err != nil || d.Items != nil {
		t.Fatalf("missing file: %v %v", d, err)
	}
	if err := f.Save(&doc{Version: 2, Items: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Load(&d); err != nil || len(d.Items) != 1 || d.Items[0] != "a" {
		t.Fatalf("saved file: %v %v", d, err)
	}
	for body, want := range map[string]string{"{": "is damaged", `{"version":1}`: "has version 1; this relaymesh reads 2"} {
		os.WriteFile(f.Path, []byte(body), 0o600)
		if err := f.Load(&doc{}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), f.Path) {
			t.Errorf("%q: err %v, want %q naming the path", body, err, want)
		}
	}
	stale := filepath.Join(dir, ".x-123.json")
	os.WriteFile(stale, nil, 0o600)
	if names, err := f.RemoveStale(); err != nil || len(names) != 1 {
		t.Errorf("RemoveStale: %v %v", names, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temp file still there: %v", err)
	}
}
