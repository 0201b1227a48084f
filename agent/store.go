package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/atomicfile"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relayrule"
	"github.com/relaymesh/relaymesh/task"
)

// storeVersion is the schema of objects.json.
const storeVersion = 1

// storedObjects is objects.json: the API-made objects and their states.
type storedObjects struct {
	Version int           `json:"version"`
	Flows   []storedFlow  `json:"flows"`
	Relays  []storedRelay `json:"relays"`
	Tasks   []storedTask  `json:"tasks"`
}

type storedFlow struct {
	Spec  flow.Spec       `json:"spec"`
	State lifecycle.State `json:"state"`
}

type storedRelay struct {
	Spec relayrule.Spec `json:"spec"`
}

type storedTask struct {
	Spec   task.Spec       `json:"spec"`
	State  lifecycle.State `json:"state"`
	Reason string          `json:"reason,omitempty"`
	// At is the playlist item and pass a running task had reached: it
	// resumes there after a restart.
	At *task.Position `json:"at,omitempty"`
}

// objectStore writes objects.json atomically: a temp file in the same
// directory, fsync, rename over the old one, fsync the directory. A crash
// leaves either the old or the new file, never a torn one.
type objectStore struct {
	path string
	mu   sync.Mutex
}

func newObjectStore(dataDir string) *objectStore {
	return &objectStore{path: filepath.Join(dataDir, "objects.json")}
}

// load reads the file; a missing file is an empty store.
func (s *objectStore) load() (*storedObjects, error) {
	data, err := os.ReadFile(s.path)
	if os.IsNotExist(err) {
		return &storedObjects{Version: storeVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("objects store: %w", err)
	}
	var so storedObjects
	if err := json.Unmarshal(data, &so); err != nil {
		return nil, fmt.Errorf("objects store %s is damaged (%v): move it away to start without the API-made objects", s.path, err)
	}
	if so.Version != storeVersion {
		return nil, fmt.Errorf("objects store %s has version %d; this relaymesh reads %d", s.path, so.Version, storeVersion)
	}
	return &so, nil
}

func (s *objectStore) save(so *storedObjects) error {
	so.Version = storeVersion
	data, err := json.MarshalIndent(so, "", "  ")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("objects store: %w", err)
	}
	if err := atomicfile.Write(s.path, tempPattern, data, 0o600); err != nil {
		return fmt.Errorf("objects store: %w", err)
	}
	return nil
}

// tempPattern names the temp files save writes before the rename.
const tempPattern = ".objects-*.json"

// removeStale removes the temp files a save interrupted by a crash left
// behind; only the agent writes them, and it has not started saving yet.
func (s *objectStore) removeStale() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(filepath.Dir(s.path), tempPattern))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("objects store: remove stale %s: %w", n, err))
		}
	}
	return names, errors.Join(errs...)
}
