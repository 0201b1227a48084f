package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/relaymesh/relaymesh/internal/atomicfile"
)

// File is one versioned JSON document the node keeps in its data dir (the
// objects store). Save writes it atomically: a temp file in the same
// directory, fsync, rename over the old one, fsync the directory, so a
// crash leaves either the old or the new file, never a torn one.
type File struct {
	Path    string
	Temp    string // the glob of Save's temp files, e.g. ".objects-*.json"
	Version int    // the "version" Load requires
	Name    string // errors name the file so, e.g. "objects store"
	Damaged string // what to do with a damaged file, said in Load's error

	mu sync.Mutex
}

// Load decodes the file into v; a missing file leaves v as it is.
func (f *File) Load(v any) error {
	data, err := os.ReadFile(f.Path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	var head struct {
		Version int `json:"version"`
	}
	err = json.Unmarshal(data, v)
	if err == nil {
		err = json.Unmarshal(data, &head)
	}
	if err != nil {
		return fmt.Errorf("%s %s is damaged (%v): %s", f.Name, f.Path, err, f.Damaged)
	}
	if head.Version != f.Version {
		return fmt.Errorf("%s %s has version %d; this relaymesh reads %d", f.Name, f.Path, head.Version, f.Version)
	}
	return nil
}

// Save writes v (which carries the version) as indented JSON.
func (f *File) Save(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o750); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := atomicfile.Write(f.Path, f.Temp, data, 0o600); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return nil
}

// RemoveStale removes the temp files a save interrupted by a crash left
// behind; call it before the first Save.
func (f *File) RemoveStale() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(filepath.Dir(f.Path), f.Temp))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("%s: remove stale %s: %w", f.Name, n, err))
		}
	}
	return names, errors.Join(errs...)
}
