package lifecycle

// A node's registries persist through one Journal: every change writes a
// snapshot of all of them to one File, and an API write is acknowledged
// only once that file holds it; otherwise it is undone, so memory and disk
// agree, and the API answers 507 (or 503) with the reason.

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"syscall"
)

// Journal is the Store of every registry of a node (see Env.Store).
type Journal struct {
	File     *File
	Snapshot func() any // what File holds: the objects and their states now
	Log      *slog.Logger

	mu      sync.Mutex // held while a snapshot is taken and written
	held    bool       // Hold: changes are not written
	inWrite bool       // under mu: a Write runs, which writes when it ends
	writeMu sync.Mutex // serializes Writes
}

// Hold stops (true) or resumes (false) the writes of Changed, e.g. while
// the stored objects are restored.
func (j *Journal) Hold(on bool) {
	j.mu.Lock()
	j.held = on
	j.mu.Unlock()
}

// Changed writes a snapshot, unless held or inside a Write (which writes
// when it ends); a failed write is logged.
func (j *Journal) Changed(string, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.held || j.inWrite {
		return
	}
	if err := j.File.Save(j.Snapshot()); err != nil {
		j.Log.Error("objects not saved", "err", err)
	}
}

// Write runs one API write: op changes the objects in memory, undo
// reverses it. It returns op's error, or a *NotSavedError when the result
// could not be written (after undoing op and writing the old state again).
// The registries' own changes (state changes) are held back while op runs
// and are included in the write that ends it.
func (j *Journal) Write(op, undo func() error) error {
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	j.mu.Lock()
	j.inWrite = true
	j.mu.Unlock()

	opErr := op()
	j.mu.Lock()
	err := j.File.Save(j.Snapshot())
	if err == nil || opErr != nil {
		j.inWrite = false
		j.mu.Unlock()
		if err != nil {
			j.Log.Error("objects not saved", "err", err)
		}
		return opErr
	}
	j.mu.Unlock()

	// undo runs without mu: the changes it makes are held back by inWrite
	nse := &NotSavedError{Err: err}
	if uerr := undo(); uerr != nil {
		nse.UndoErr = uerr
	}
	j.mu.Lock()
	if err2 := j.File.Save(j.Snapshot()); err2 != nil {
		// the file on disk is the state before op, which is what memory
		// holds again (unless the undo failed)
		j.Log.Debug("objects not saved after an undo", "err", err2)
	}
	j.inWrite = false
	j.mu.Unlock()
	j.Log.Error("objects not saved: the API write was refused and undone", "err", err, "undo_err", nse.UndoErr)
	return nse
}

// NotSavedError is an API write that could not be saved and was undone.
type NotSavedError struct {
	Err     error
	UndoErr error // the undo failed too: memory holds the change, disk does not
}

func (e *NotSavedError) Error() string {
	// "undone", not "not made": a refused stop did stop the object, and
	// its undo started it again
	msg := fmt.Sprintf("the change was not saved to disk, so it was undone: %v", e.Err)
	if e.UndoErr != nil {
		msg = fmt.Sprintf("the change was not saved to disk and could not be undone (%v): %v; it is lost at the next restart", e.UndoErr, e.Err)
	}
	return msg
}

func (e *NotSavedError) Unwrap() error { return e.Err }

// HTTPStatus is 507 when the disk (or quota) is full, else 503 (it is an
// api.StatusError).
func (e *NotSavedError) HTTPStatus() (int, string) {
	if errors.Is(e.Err, syscall.ENOSPC) || errors.Is(e.Err, syscall.EDQUOT) {
		return http.StatusInsufficientStorage, "insufficient_storage"
	}
	return http.StatusServiceUnavailable, "not_saved"
}
