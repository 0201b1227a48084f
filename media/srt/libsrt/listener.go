package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// Request is a caller's handshake as the listen callback sees it, before
// the listener answers.
type Request struct {
	StreamID  string
	Remote    *net.UDPAddr
	HSVersion int // 4 (no streamid possible) or 5
}

// Decision is the answer to a Request. Reject != 0 refuses the
// handshake with that reason (Rej*, RejX*), which the caller sees. An
// accepted connection gets the passphrase, latency and peer idle timeout
// given here instead of the listener's (zero values keep the listener's). There is no key
// length: libsrt 1.5.1's responder takes the caller's (its KMREQ
// overwrites the listener's SRTO_PBKEYLEN); Conn.PBKeyLen shows it.
type Decision struct {
	Reject          int
	Passphrase      string
	Latency         time.Duration
	PeerIdleTimeout time.Duration
	// FC and RcvBuf replace the listener's flight window (packets) and
	// receive buffer (bytes) for this connection; 0 keeps the listener's.
	// libsrt allocates its loss lists and buffer index from them when the
	// connection is accepted, so they bound its memory per connection.
	FC     int
	RcvBuf int
	Tag    any // returned by the accepted Conn's Tag
	// Release, if set, is called once when what Decide accepted is over:
	// the accepted Conn closed, or the handshake ended without one
	// (refused by libsrt, abandoned by the caller, the listener closed).
	// It must not block.
	Release func()
}

// release calls d.Release, if any.
func (d Decision) release() {
	if d.Release != nil {
		d.Release()
	}
}

// ListenConfig configures a Listener.
type ListenConfig struct {
	Options     // the listener's socket options, inherited by accepted sockets
	Backlog int // default 64
	// Decide runs on libsrt's receive thread of the listener's port,
	// inside the handshake: it must return at once (no I/O, no waits),
	// or every handshake and packet of that port waits with it. nil
	// accepts every caller.
	Decide func(Request) Decision
	// Failed, if set, is told when a handshake Decide accepted was then
	// refused by libsrt itself (reason RejBadSecret: wrong passphrase,
	// RejUnsecure: one side has no passphrase, ...). It runs on its own
	// goroutine.
	Failed func(tag any, reason int)
}

// Listener accepts SRT callers.
type Listener struct {
	id     C.SRTSOCKET
	st     *sockState
	cfg    ListenConfig
	addr   *net.UDPAddr
	handle uintptr
	done   chan struct{}
	once   sync.Once

	inflight int // accepted, not yet Admitted by their owner; under tabMu
}

// pending holds decisions of handshakes accepted by the callback until
// libsrt hands the socket to Accept (or refuses it).
type pendingEntry struct {
	l   *Listener
	dec Decision
	req Request
	at  time.Time
}

var (
	tabMu     sync.Mutex
	listeners = map[uintptr]*Listener{}
	nextH     uintptr
	pending   = map[C.SRTSOCKET]*pendingEntry{}
)

// pendingTTL drops decisions whose handshake neither completed nor was
// reported refused (the caller went away mid-handshake).
const pendingTTL = 15 * time.Second

// Listen binds addr (host:port; an empty host listens on every address,
// IPv4 and IPv6) and starts listening.
func Listen(addr string, cfg ListenConfig) (*Listener, error) {
	e, err := start()
	if err != nil {
		return nil, err
	}
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen %q: bad port", addr)
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 64
	}
	var ips []net.IP
	if host == "" {
		ips = []net.IP{net.IPv6unspecified, net.IPv4zero} // dual stack, else IPv4
	} else {
		ip := net.ParseIP(host)
		if ip == nil {
			a, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				return nil, fmt.Errorf("listen %q: %w", addr, err)
			}
			ip = a.IP
		}
		ips = []net.IP{ip}
	}
	var lastErr error
	for _, ip := range ips {
		l, err := listenOn(e, ip, port, cfg)
		if err == nil {
			return l, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("listen %s: %w", addr, lastErr)
}

func listenOn(e *engine, ip net.IP, port int, cfg ListenConfig) (*Listener, error) {
	rc := C.rm_socket()
	if rc < 0 {
		return nil, srtErr("socket", rc)
	}
	s := C.SRTSOCKET(rc)
	fail := func(err error) (*Listener, error) {
		C.srt_close(s)
		return nil, err
	}
	if err := cfg.Options.apply(s, false); err != nil {
		return fail(err)
	}
	fam := 4
	if ip.To4() == nil {
		fam = 6
		if ip.IsUnspecified() {
			if err := setInt(s, C.SRTO_IPV6ONLY, "ipv6only", 0); err != nil {
				return fail(err)
			}
		}
	}
	if err := bindFiltered(s, fam, ip, port, false); err != nil {
		return fail(err)
	}
	l := &Listener{id: s, st: newSockState(), cfg: cfg, done: make(chan struct{})}
	tabMu.Lock()
	nextH++
	l.handle = nextH
	listeners[l.handle] = l
	tabMu.Unlock()
	forget := func(err error) (*Listener, error) {
		tabMu.Lock()
		delete(listeners, l.handle)
		tabMu.Unlock()
		return fail(err)
	}
	if rc := C.rm_listen_callback(s, C.uintptr_t(l.handle)); rc < 0 {
		return forget(srtErr("listen_callback", rc))
	}
	if err := e.add(s, l.st); err != nil {
		return forget(err)
	}
	if rc := C.rm_listen(s, C.int(cfg.Backlog)); rc < 0 {
		e.remove(s)
		return forget(srtErr("listen", rc))
	}
	l.addr = addrOf(s, false)
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Accept waits for the next connection whose handshake completed. A
// connection that ends before it is handed over costs only itself: Accept
// goes on with the next one and fails only when the listener does.
func (l *Listener) Accept() (*Conn, error) {
	sweep := time.NewTicker(pendingTTL / 3)
	defer sweep.Stop()
	for {
		rc := C.rm_accept(l.id)
		if rc >= 0 {
			if c := l.accepted(C.SRTSOCKET(rc)); c != nil {
				return c, nil
			}
			continue
		}
		select {
		case <-l.done:
			return nil, ErrClosed
		default:
		}
		switch -int(rc) {
		case int(C.SRT_EASYNCRCV):
		case int(C.SRT_ESCLOSED):
			// the socket libsrt queued was closed before srt_accept
			// took it (libsrt 1.5.1: "pending connection has
			// unexpectedly closed"; the caller left at once)
			continue
		default:
			return nil, srtErr("accept", rc)
		}
		select {
		case <-l.st.rd:
		case <-l.done:
			return nil, ErrClosed
		case <-sweep.C:
			l.sweep()
		}
	}
}

// accepted makes the Conn of socket s, or closes s and returns nil when
// it cannot be used.
func (l *Listener) accepted(s C.SRTSOCKET) *Conn {
	// The socket stays counted by Pending, as in flight, from here
	// until its owner counts it (Conn.Admitted) or it closes: a limit
	// checked in Decide never misses a connection between the two.
	tabMu.Lock()
	p := pending[s]
	delete(pending, s)
	if p != nil {
		l.inflight++
	}
	tabMu.Unlock()
	admitted, release := func() {}, func() {}
	if p != nil {
		admitted = sync.OnceFunc(func() {
			tabMu.Lock()
			l.inflight--
			tabMu.Unlock()
		})
		release = sync.OnceFunc(p.dec.release)
	}
	st := newSockState()
	if err := eng.add(s, st); err != nil {
		// libsrt no longer knows the socket (closed since srt_accept)
		warn("srt connection dropped: its socket cannot be watched", "err", err)
		C.srt_close(s)
		admitted()
		release()
		return nil
	}
	if f := packetFilter(s); f != "" {
		// the socket filter drops handshakes asking for one; should one
		// get through, the connection ends here (see filter.go)
		warn("srt connection closed: it negotiated a packet filter, which relaymesh does not run", "filter", f)
		eng.remove(s)
		C.srt_close(s)
		admitted()
		release()
		return nil
	}
	c := newConn(eng, s, st, l.cfg.Options)
	c.admitted = admitted
	c.release = release
	if p != nil {
		c.streamID = p.req.StreamID
		c.tag = p.dec.Tag
	}
	return c
}

func (l *Listener) sweep() {
	now := time.Now()
	l.dropPending(func(p *pendingEntry) bool { return now.Sub(p.at) > pendingTTL })
}

// dropPending forgets the listener's pending handshakes that drop says
// to (abandoned, or all when the listener closes) and gives back what
// their decisions reserved. tabMu must not be held.
func (l *Listener) dropPending(drop func(*pendingEntry) bool) {
	var dropped []*pendingEntry
	tabMu.Lock()
	for s, p := range pending {
		if p.l == l && drop(p) {
			delete(pending, s)
			dropped = append(dropped, p)
		}
	}
	tabMu.Unlock()
	for _, p := range dropped {
		p.dec.release()
	}
}

// Pending counts handshakes Decide accepted whose connections the
// listener's owner has not yet Admitted (or closed).
func (l *Listener) Pending() int {
	n := 0
	tabMu.Lock()
	for _, p := range pending {
		if p.l == l {
			n++
		}
	}
	n += l.inflight
	tabMu.Unlock()
	return n
}

// Close stops listening; accepted connections stay open. Idempotent.
func (l *Listener) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		close(l.done)
		tabMu.Lock()
		delete(listeners, l.handle)
		tabMu.Unlock()
		l.dropPending(func(*pendingEntry) bool { return true })
		eng.remove(l.id)
		C.srt_close(l.id)
	})
	return nil
}

var errDecidePanic = errors.New("panic in Decide")

//export goListenHook
func goListenHook(h C.uintptr_t, ns C.SRTSOCKET, hsv C.int, fam C.int, ip *C.uchar, port C.int, sid *C.char) (code C.int) {
	tabMu.Lock()
	l := listeners[uintptr(h)]
	tabMu.Unlock()
	if l == nil {
		return RejClose
	}
	defer func() {
		if r := recover(); r != nil {
			logMu.RLock()
			logger.Error("srt listen callback failed", "err", errDecidePanic, "panic", fmt.Sprint(r))
			logMu.RUnlock()
			code = RejXISE
		}
	}()
	req := Request{
		StreamID:  C.GoString(sid),
		Remote:    udpAddr(int(fam), C.GoBytes(unsafe.Pointer(ip), 16), int(port)),
		HSVersion: int(hsv),
	}
	var d Decision
	if l.cfg.Decide != nil {
		d = l.cfg.Decide(req)
	}
	if d.Reject != 0 {
		return C.int(d.Reject)
	}
	if err := d.apply(ns); err != nil {
		d.release()
		logMu.RLock()
		logger.Error("srt listen callback: cannot set the connection's options", "err", err)
		logMu.RUnlock()
		return RejXISE
	}
	tabMu.Lock()
	old := pending[ns]
	pending[ns] = &pendingEntry{l: l, dec: d, req: req, at: time.Now()}
	tabMu.Unlock()
	if old != nil { // libsrt asked again for the same socket
		old.dec.release()
	}
	return 0
}

func (d Decision) apply(ns C.SRTSOCKET) error {
	if d.Passphrase != "" {
		if n := len(d.Passphrase); n < 10 || n > 80 {
			return fmt.Errorf("passphrase must be 10 to 80 characters (got %d)", n)
		}
		if err := setString(ns, C.SRTO_PASSPHRASE, "passphrase", d.Passphrase); err != nil {
			return err
		}
	}
	if d.PeerIdleTimeout > 0 {
		if err := setInt(ns, C.SRTO_PEERIDLETIMEO, "peeridletimeo", ms(d.PeerIdleTimeout)); err != nil {
			return err
		}
	}
	// the flight window first: libsrt caps the receive buffer by it
	if d.FC > 0 {
		if err := setInt(ns, C.SRTO_FC, "fc", d.FC); err != nil {
			return err
		}
	}
	if d.RcvBuf > 0 {
		if err := setInt(ns, C.SRTO_RCVBUF, "rcvbuf", d.RcvBuf); err != nil {
			return err
		}
	}
	if d.Latency > 0 {
		for _, o := range []C.SRT_SOCKOPT{C.SRTO_RCVLATENCY, C.SRTO_PEERLATENCY} {
			if err := setInt(ns, o, "latency", ms(d.Latency)); err != nil {
				return err
			}
		}
	}
	return nil
}

// handshakeRejected reports a refusal libsrt logged for socket ns after
// the callback accepted it. It runs on libsrt's thread.
func handshakeRejected(ns C.SRTSOCKET, reason int) bool {
	// ns is the last socket the callback accepted on this thread; a
	// connected one completed its handshake, and the line is about a later
	// caller libsrt refused before the callback ran (backlog full)
	if C.srt_getsockstate(ns) == C.SRTS_CONNECTED {
		return false
	}
	tabMu.Lock()
	p := pending[ns]
	delete(pending, ns)
	tabMu.Unlock()
	if p == nil {
		return false
	}
	p.dec.release()
	if f := p.l.cfg.Failed; f != nil {
		go f(p.dec.Tag, reason)
	}
	return true
}
