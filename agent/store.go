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
	Version int            `json:"version"`
	Flows   []flow.Stored  `json:"flows"`
	Relays  []relay.Stored `json:"relays"`
	Tasks   []task.Stored  `json:"tasks"`
}

// objectsFile is objects.json (lifecycle.File: written atomically).
func objectsFile(dataDir string) *lifecycle.File {
	return &lifecycle.File{Path: filepath.Join(dataDir, "objects.json"), Temp: ".objects-*.json",
		Version: storeVersion, Name: "objects store", Damaged: "move it away to start without the API-made objects"}
}

// snapshot is what objects.json holds now.
func (o *objectsState) snapshot() any {
	return &storedObjects{Version: storeVersion, Flows: o.flows.Stored(), Relays: o.relays.Stored(), Tasks: o.tasks.Stored()}
}
