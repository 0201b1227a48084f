// Package libsrt is relaymesh's binding of Haivision's libsrt (Debian
// libsrt1.5-gnutls) through cgo.
//
// One package-level engine starts libsrt once and drives every socket
// from libsrt's epoll (edge-triggered): one C thread waits in
// srt_epoll_uwait and hands the events to a single poller goroutine
// through an eventfd in Go's netpoller (no goroutine sits in a long cgo
// call); sockets are non-blocking, and a goroutine that has to wait for
// a socket parks on a channel, never on an OS thread. The C
// side never holds a Go pointer: a listener is known to libsrt by a
// number from a table of this package.
package libsrt

/*
#cgo pkg-config: srt
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// sockState is what the poller knows about a socket: channels (capacity
// 1) that it signals when the socket becomes readable or writable, and
// one it closes when the socket reports an error (broken or closed).
type sockState struct {
	rd, wr   chan struct{}
	broken   chan struct{}
	errOnce  sync.Once
	accepter bool // a listener: rd means "accept"

	// final holds the counters read when the socket reported its error:
	// libsrt closes a broken socket on its own soon after, and its
	// statistics go with it.
	finalMu sync.Mutex
	final   *Stats
}

func newSockState() *sockState {
	return &sockState{rd: make(chan struct{}, 1), wr: make(chan struct{}, 1), broken: make(chan struct{})}
}

func (s *sockState) fail() { s.errOnce.Do(func() { close(s.broken) }) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

type engine struct {
	eid   C.int
	mu    sync.RWMutex
	socks map[C.SRTSOCKET]*sockState
}

var (
	engOnce sync.Once
	eng     *engine
	engErr  error

	logMu  sync.RWMutex
	logger = slog.New(slog.DiscardHandler)
)

// SetLogger sets where libsrt's own warnings and errors go (default:
// nowhere). They are rate-limited: hostile traffic makes libsrt log.
func SetLogger(l *slog.Logger) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	logMu.Lock()
	logger = l.With("component", "libsrt")
	logMu.Unlock()
}

// Version is the libsrt version in use, as "1.5.1".
func Version() string {
	v := uint32(C.srt_getversion())
	return fmt.Sprintf("%d.%d.%d", v>>16, (v>>8)&0xff, v&0xff)
}

// start starts libsrt and the poller once.
func start() (*engine, error) {
	engOnce.Do(func() {
		if rc := C.rm_startup(); rc < 0 {
			engErr = fmt.Errorf("srt_startup: %s", errText(-int(rc)))
			return
		}
		eid := C.srt_epoll_create()
		if eid < 0 {
			engErr = fmt.Errorf("srt_epoll_create failed")
			return
		}
		C.srt_epoll_set(eid, C.SRT_EPOLL_ENABLE_EMPTY)
		fd := C.rm_events_start(eid)
		if fd < 0 {
			engErr = fmt.Errorf("libsrt event thread: eventfd or pthread_create failed")
			return
		}
		eng = &engine{eid: eid, socks: map[C.SRTSOCKET]*sockState{}}
		go eng.poll(os.NewFile(uintptr(fd), "libsrt-events"))
	})
	return eng, engErr
}

// epollEvents: readable, writable, error; edge-triggered (bit 31).
var epollEvents = int32(C.SRT_EPOLL_IN|C.SRT_EPOLL_OUT|C.SRT_EPOLL_ERR) | -1<<31

func (e *engine) add(s C.SRTSOCKET, st *sockState) error {
	e.mu.Lock()
	e.socks[s] = st
	e.mu.Unlock()
	if rc := C.rm_epoll_add(e.eid, s, C.int(epollEvents)); rc < 0 {
		e.mu.Lock()
		delete(e.socks, s)
		e.mu.Unlock()
		return fmt.Errorf("srt_epoll_add_usock: %s", errText(-int(rc)))
	}
	return nil
}

func (e *engine) remove(s C.SRTSOCKET) {
	C.srt_epoll_remove_usock(e.eid, s)
	e.mu.Lock()
	delete(e.socks, s)
	e.mu.Unlock()
}

// poll is the engine's one goroutine dispatching libsrt's events: it
// waits in Go's netpoller on the event thread's eventfd (shim.c), takes
// the queued events in one cgo call and turns them into channel signals.
func (e *engine) poll(efd *os.File) {
	const n = 256
	evs := (*[n]C.SRT_EPOLL_EVENT)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.SRT_EPOLL_EVENT{}))))
	var tick [8]byte
	for {
		k := int(C.rm_events_take(&evs[0], n))
		if k == 0 {
			if _, err := efd.Read(tick[:]); err != nil {
				time.Sleep(10 * time.Millisecond) // an error here is not expected; do not spin
			}
			continue
		}
		e.mu.RLock()
		for i := 0; i < k; i++ {
			st := e.socks[evs[i].fd]
			if st == nil {
				continue
			}
			ev := evs[i].events
			if ev&C.SRT_EPOLL_ERR != 0 {
				if fs, ok := statsOf(evs[i].fd); ok {
					st.finalMu.Lock()
					st.final = &fs
					st.finalMu.Unlock()
				}
				st.fail()
				signal(st.rd)
				signal(st.wr)
				continue
			}
			if ev&C.SRT_EPOLL_IN != 0 {
				signal(st.rd)
			}
			if ev&C.SRT_EPOLL_OUT != 0 {
				signal(st.wr)
			}
		}
		e.mu.RUnlock()
	}
}

// ---------------------------------------------------------------------
// libsrt's log

var (
	logWindow  atomic.Int64 // unix second of the current window
	logCount   atomic.Int64 // lines in that window
	logDropped atomic.Uint64
)

const logPerSecond = 20

//export goLog
func goLog(level C.int, msg *C.char, ns C.SRTSOCKET) {
	text := C.GoString(msg)
	if strings.Contains(text, "srt_accept: no pending connection available") {
		return // every non-blocking Accept ends so (SRT_EASYNCRCV): not news
	}
	if ns >= 0 {
		if code, ok := parseReject(text); ok && handshakeRejected(ns, code) {
			return
		}
	}
	now := time.Now().Unix()
	if w := logWindow.Load(); w != now && logWindow.CompareAndSwap(w, now) {
		logCount.Store(0)
	}
	if logCount.Add(1) > logPerSecond {
		logDropped.Add(1)
		return
	}
	logMu.RLock()
	l := logger
	logMu.RUnlock()
	lvl := slog.LevelWarn
	if level > 4 { // syslog LOG_WARNING = 4: notice and below are debug for us
		lvl = slog.LevelDebug
	}
	l.Log(context.Background(), lvl, "libsrt", "msg", strings.TrimSpace(text))
}

// parseReject reads the reason of libsrt's "rsp(REJECT): 1010 - ..." line.
func parseReject(s string) (int, bool) {
	const tag = "rsp(REJECT): "
	i := strings.Index(s, tag)
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+len(tag):])
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, false
	}
	return v - 1000, true // URQFailure(reason) = 1000 + reason
}
