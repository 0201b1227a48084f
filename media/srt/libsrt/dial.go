package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dial connects to an SRT listener at addr (host:port) as a caller.
// libsrt repeats a lost handshake itself until o.ConnectTimeout (3s by
// default). A refused handshake returns a *RejectError with the
// listener's reason; no answer returns an error wrapping ErrTimeout.
func Dial(ctx context.Context, addr string, o Options) (*Conn, error) {
	e, err := start()
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rc := C.rm_socket()
	if rc < 0 {
		return nil, srtErr("socket", rc)
	}
	s := C.SRTSOCKET(rc)
	if err := o.apply(s, true); err != nil {
		C.srt_close(s)
		return nil, err
	}
	st := newSockState()
	if err := e.add(s, st); err != nil {
		C.srt_close(s)
		return nil, err
	}
	dup := -1
	fail := func(err error) (*Conn, error) {
		e.remove(s)
		C.srt_close(s)
		if dup >= 0 {
			unix.Close(dup)
		}
		return nil, err
	}
	fam, raw := 4, ua.IP.To4()
	if raw == nil {
		fam, raw = 6, ua.IP.To16()
	}
	if raw == nil {
		return fail(fmt.Errorf("no address for %s", addr))
	}
	// the socket is ours, with IP_RECVERR for the link watch (errQueue)
	fd, d, err := callerSocket(fam == 4)
	if err != nil {
		return fail(err)
	}
	dup = d
	if rc := C.rm_bind_acquire(s, C.int(fd)); rc < 0 {
		unix.Close(fd)
		return fail(srtErr("bind_acquire", rc))
	}
	if rc := C.rm_connect(s, C.int(fam), (*C.uchar)(unsafe.Pointer(&raw[0])), C.int(ua.Port)); rc < 0 {
		if r := int(C.srt_getrejectreason(s)); r != RejUnknown {
			return fail(rejectErr(r))
		}
		return fail(srtErr("connect", rc))
	}
	switch err := waitConnected(ctx, st, func() sockStatus { return sockStatus(C.srt_getsockstate(s)) }, connectBound(o)); {
	case err == nil:
		c := newConn(e, s, st, o)
		// libsrt 1.5.1's srt_getpeername answers a caller with its own
		// local address: the peer is the address dialed.
		c.remote = &net.UDPAddr{IP: append(net.IP(nil), ua.IP...), Port: ua.Port, Zone: ua.Zone}
		c.errq = newErrQueue(dup, c.remote)
		return c, nil
	case errors.Is(err, errConnectFailed):
		return fail(rejectErr(int(C.srt_getrejectreason(s))))
	default:
		return fail(err)
	}
}

// sockStatus is libsrt's SRT_SOCKSTATUS.
type sockStatus int

const (
	statusConnecting = sockStatus(C.SRTS_CONNECTING)
	statusConnected  = sockStatus(C.SRTS_CONNECTED)
)

// errConnectFailed: libsrt ended the connect; its reject reason says why.
var errConnectFailed = errors.New("connect failed")

// connectBound is how long Dial waits at most: libsrt's own connect
// timeout and a margin, in case it never reports either outcome.
func connectBound(o Options) time.Duration {
	d := o.ConnectTimeout
	if d <= 0 {
		d = 3 * time.Second // libsrt's SRTO_CONNTIMEO default
	}
	return d + 2*time.Second
}

// waitConnected waits until the socket is connected (nil), libsrt ends
// the connect (errConnectFailed), ctx ends or bound passes. An error
// libsrt flags while the state still reads CONNECTING ends the connect
// too: the broken channel stays closed, and waiting on it again would
// spin.
func waitConnected(ctx context.Context, st *sockState, status func() sockStatus, bound time.Duration) error {
	t := time.NewTimer(bound)
	defer t.Stop()
	for {
		broken := false
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("%w (libsrt reported no outcome in %s)", ErrTimeout, bound)
		case <-st.wr:
		case <-st.broken:
			broken = true
		}
		switch status() {
		case statusConnected:
			return nil
		case statusConnecting:
			if !broken {
				continue
			}
		}
		return errConnectFailed
	}
}

func rejectErr(r int) error {
	if r == RejTimeout || r == RejUnknown {
		return fmt.Errorf("%w (no answer from the listener)", ErrTimeout)
	}
	return &RejectError{Code: r}
}
