package agent

// This file makes the API's creates, updates and deletes durable: a write
// is acknowledged only once objects.json holds it; otherwise it is undone,
// so memory and disk agree, and the API answers 507 (or 503) with the reason.

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"
)

// notSavedError is an API write that could not be saved and was undone.
type notSavedError struct {
	err     error
	undoErr error // the undo failed too: memory holds the change, disk does not
}

func (e *notSavedError) Error() string {
	// "undone", not "not made": a refused stop did stop the object, and
	// its undo started it again
	msg := fmt.Sprintf("the change was not saved to disk, so it was undone: %v", e.err)
	if e.undoErr != nil {
		msg = fmt.Sprintf("the change was not saved to disk and could not be undone (%v): %v; it is lost at the next restart", e.undoErr, e.err)
	}
	return msg
}

func (e *notSavedError) Unwrap() error { return e.err }

// HTTPStatus is 507 when the disk (or quota) is full, else 503 (it is an
// api.StatusError).
func (e *notSavedError) HTTPStatus() (int, string) {
	if errors.Is(e.err, syscall.ENOSPC) || errors.Is(e.err, syscall.EDQUOT) {
		return http.StatusInsufficientStorage, "insufficient_storage"
	}
	return http.StatusServiceUnavailable, "not_saved"
}

// writeObjects runs one API write: op changes the objects in memory, undo
// reverses it. It returns op's error, or a *notSavedError when the result
// could not be written (after undoing op and writing the old state again).
// The managers' own saves (state changes) are held back while op runs and
// are included in the write that ends it.
func (a *Agent) writeObjects(op func() error, undo func() error) error {
	o := &a.objects
	o.txMu.Lock()
	defer o.txMu.Unlock()
	o.saveMu.Lock()
	o.inTxn = true
	o.saveMu.Unlock()

	opErr := op()
	o.saveMu.Lock()
	err := a.writeObjectsLocked()
	if err == nil || opErr != nil {
		o.inTxn = false
		o.saveMu.Unlock()
		if err != nil {
			a.log.Error("objects not saved", "err", err)
		}
		return opErr
	}
	o.saveMu.Unlock()

	// undo runs without saveMu: the managers' saves it triggers are
	// held back by inTxn
	nse := &notSavedError{err: err}
	if uerr := undo(); uerr != nil {
		nse.undoErr = uerr
	}
	o.saveMu.Lock()
	if err2 := a.writeObjectsLocked(); err2 != nil {
		// the file on disk is the state before op, which is what memory
		// holds again (unless the undo failed)
		a.log.Debug("objects not saved after an undo", "err", err2)
	}
	o.inTxn = false
	o.saveMu.Unlock()
	a.log.Error("objects not saved: the API write was refused and undone", "err", err, "undo_err", nse.undoErr)
	return nse
}
