package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/internal/atomicfile"
)

// InterruptedStart is the reason an object shows when the agent died
// while bringing it back up after a restart.
const InterruptedStart = "agent stopped while starting this; start it again"

// startGrace is how long restored objects count as "starting" for the
// guard: the first connection attempt of a pull or push (3 s connect
// timeout) and its first retry.
const startGrace = 10 * time.Second

// StartGuard notes in the data dir which objects the agent is bringing
// back up after a restart, until they have run for startGrace or the agent
// stops cleanly. If the agent dies meanwhile (a crash, kill -9), the next
// start finds the note and brings those objects back stopped, in error
// with InterruptedStart, instead of starting them again: an object whose
// start kills the agent does so once, not at every restart.
type StartGuard struct {
	path string
	log  *slog.Logger
}

// NewStartGuard keeps its note in dataDir's starting.json.
func NewStartGuard(dataDir string, log *slog.Logger) *StartGuard {
	return &StartGuard{path: filepath.Join(dataDir, "starting.json"), log: log}
}

// Begin reads the note a previous run left (the objects whose start it
// did not survive) and writes the new one: the ids in next minus those.
// Ids are "flow/ID" or "task/ID".
func (g *StartGuard) Begin(next []string) (interrupted map[string]bool) {
	interrupted = map[string]bool{}
	if data, err := os.ReadFile(g.path); err == nil {
		var ids []string
		if err := json.Unmarshal(data, &ids); err != nil {
			g.log.Warn("start note unreadable; ignored", "path", g.path, "err", err)
		}
		for _, id := range ids {
			interrupted[id] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		g.log.Warn("start note unreadable; ignored", "path", g.path, "err", err)
	}
	var keep []string
	for _, id := range next {
		if !interrupted[id] {
			keep = append(keep, id)
		}
	}
	if len(keep) == 0 {
		g.Clear()
		return interrupted
	}
	data, _ := json.Marshal(keep)
	err := os.MkdirAll(filepath.Dir(g.path), 0o750)
	if err == nil {
		err = atomicfile.Write(g.path, ".starting-*.json", data, 0o600)
	}
	if err != nil {
		g.log.Warn("start note not written: a crash while starting the restored objects will start them again", "err", err)
	}
	return interrupted
}

// Run removes the note after startGrace, or returns when ctx ends.
func (g *StartGuard) Run(ctx context.Context) error {
	t := time.NewTimer(startGrace)
	defer t.Stop()
	select {
	case <-t.C:
		g.Clear()
	case <-ctx.Done():
	}
	return nil
}

// Clear removes the note (the restored objects started, or a clean
// stop); it is idempotent.
func (g *StartGuard) Clear() error {
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		g.log.Warn("start note not removed", "path", g.path, "err", err)
	}
	return nil
}

// Restore creates one object read back from the store (create, in the
// state it is to have). One whose start the agent did not survive last
// time (key, "flow/ID" or "task/ID", in Begin's interrupted) comes back
// stopped, in error with InterruptedStart (fail); one that cannot be
// created is logged.
func Restore(key string, stored State, interrupted map[string]bool, create func(State) error, fail func(reason string), log *slog.Logger) {
	kind, id, _ := strings.Cut(key, "/")
	st := stored
	if interrupted[key] {
		st = Standby
	}
	if err := create(st); err != nil {
		log.Error("stored "+kind+" not restored", kind, id, "err", err)
	} else if st != stored {
		fail(InterruptedStart)
		log.Warn(kind+" not started again: the agent stopped while starting it", kind, id)
	}
}
