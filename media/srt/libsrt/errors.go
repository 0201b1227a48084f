package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// Reject reasons: libsrt's SRT_REJ_* and the access-control SRT_REJX_*
// codes (srt/access_control.h). A listener's Decide returns one of them
// to refuse a handshake; a failed Dial reports the one the listener sent.
const (
	RejUnknown    = 0
	RejSystem     = 1
	RejPeer       = 2
	RejResource   = 3
	RejRogue      = 4
	RejBacklog    = 5
	RejIPE        = 6
	RejClose      = 7
	RejVersion    = 8
	RejRdvCookie  = 9
	RejBadSecret  = 10
	RejUnsecure   = 11
	RejMessageAPI = 12
	RejCongestion = 13
	RejFilter     = 14
	RejGroup      = 15
	RejTimeout    = 16

	RejXBadRequest   = 1400
	RejXUnauthorized = 1401
	RejXOverload     = 1402
	RejXForbidden    = 1403
	RejXNotFound     = 1404
	RejXBadMode      = 1405
	RejXUnacceptable = 1406
	RejXConflict     = 1409
	RejXLocked       = 1423
	RejXISE          = 1500
	RejXUnimpl       = 1501
	RejXDown         = 1503
	RejXVersion      = 1505
)

var rejText = map[int]string{
	RejUnknown:       "unknown reason",
	RejSystem:        "system error on the peer",
	RejPeer:          "the peer rejected the connection",
	RejResource:      "the peer is out of resources",
	RejRogue:         "bad handshake data",
	RejBacklog:       "the listener's backlog is full",
	RejIPE:           "internal program error in the peer",
	RejClose:         "the listener is closing",
	RejVersion:       "SRT version too old for the peer",
	RejRdvCookie:     "rendezvous cookie collision",
	RejBadSecret:     "wrong passphrase",
	RejUnsecure:      "encryption mismatch: one side has a passphrase, the other has none",
	RejMessageAPI:    "message API mismatch",
	RejCongestion:    "congestion control mismatch",
	RejFilter:        "packet filter mismatch",
	RejGroup:         "group settings mismatch",
	RejTimeout:       "connection timed out",
	RejXBadRequest:   "bad request (malformed streamid)",
	RejXUnauthorized: "unauthorized",
	RejXOverload:     "overloaded or too many connections",
	RejXForbidden:    "forbidden",
	RejXNotFound:     "stream not found",
	RejXBadMode:      "mode not supported",
	RejXUnacceptable: "parameters not acceptable",
	RejXConflict:     "conflict: the stream already has a publisher",
	RejXLocked:       "stream locked",
	RejXISE:          "internal server error",
	RejXUnimpl:       "not implemented",
	RejXDown:         "service down",
	RejXVersion:      "version not supported",
}

// RejectText describes a reject reason in words.
func RejectText(code int) string {
	if t, ok := rejText[code]; ok {
		return t
	}
	if code >= 1000 {
		return fmt.Sprintf("application reason %d", code)
	}
	return fmt.Sprintf("reason %d", code)
}

// RejectError is a handshake the listener refused.
type RejectError struct {
	Code int
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("rejected by the listener: %s (SRT reject code %d)", RejectText(e.Code), e.Code)
}

// Errors.
var (
	// ErrClosed: the connection or listener was closed locally.
	ErrClosed = errors.New("srt: use of closed connection")
	// ErrTimeout: a connect got no answer in time.
	ErrTimeout = errors.New("srt: connection setup timed out")
)

// Error is a libsrt error code with its text.
type Error struct {
	Code int
	Op   string
}

func (e *Error) Error() string { return fmt.Sprintf("srt %s: %s", e.Op, errText(e.Code)) }

func errText(code int) string {
	return C.GoString(C.srt_strerror(C.int(code), 0))
}

func srtErr(op string, rc C.int) error {
	return &Error{Code: -int(rc), Op: op}
}
