package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"net"
	"unsafe"
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
	fail := func(err error) (*Conn, error) {
		e.remove(s)
		C.srt_close(s)
		return nil, err
	}
	fam, raw := 4, ua.IP.To4()
	if raw == nil {
		fam, raw = 6, ua.IP.To16()
	}
	if raw == nil {
		return fail(fmt.Errorf("no address for %s", addr))
	}
	if rc := C.rm_connect(s, C.int(fam), (*C.uchar)(unsafe.Pointer(&raw[0])), C.int(ua.Port)); rc < 0 {
		if r := int(C.srt_getrejectreason(s)); r != RejUnknown {
			return fail(rejectErr(r))
		}
		return fail(srtErr("connect", rc))
	}
	for {
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-st.wr:
		case <-st.broken:
		}
		switch C.srt_getsockstate(s) {
		case C.SRTS_CONNECTED:
			return newConn(e, s, st, o), nil
		case C.SRTS_CONNECTING:
			continue
		}
		return fail(rejectErr(int(C.srt_getrejectreason(s))))
	}
}

func rejectErr(r int) error {
	if r == RejTimeout || r == RejUnknown {
		return fmt.Errorf("%w (no answer from the listener)", ErrTimeout)
	}
	return &RejectError{Code: r}
}
