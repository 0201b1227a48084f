package agent

import (
	"path/filepath"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relay"
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
	Spec relay.Spec `json:"spec"`
}

type storedTask struct {
	Spec   task.Spec       `json:"spec"`
	State  lifecycle.State `json:"state"`
	Reason string          `json:"reason,omitempty"`
	// At is the playlist item and pass a running task had reached: it
	// resumes there after a restart.
	At *task.Position `json:"at,omitempty"`
}

// objectStore is objects.json (lifecycle.File: written atomically).
type objectStore struct{ f *lifecycle.File }

func newObjectStore(dataDir string) *objectStore {
	return &objectStore{&lifecycle.File{Path: filepath.Join(dataDir, "objects.json"), Temp: ".objects-*.json",
		Version: storeVersion, Name: "objects store", Damaged: "move it away to start without the API-made objects"}}
}

// load reads the file; a missing file is an empty store.
func (s *objectStore) load() (*storedObjects, error) {
	so := &storedObjects{Version: storeVersion}
	if err := s.f.Load(so); err != nil {
		return nil, err
	}
	return so, nil
}

func (s *objectStore) save(so *storedObjects) error {
	so.Version = storeVersion
	return s.f.Save(so)
}

// removeStale removes the temp files a save interrupted by a crash left
// behind; only the agent writes them, and it has not started saving yet.
func (s *objectStore) removeStale() ([]string, error) { return s.f.RemoveStale() }
