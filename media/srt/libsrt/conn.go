package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Conn is one connected SRT socket in live mode: every Read returns one
// message and every Write sends one (at most 1316 bytes by default).
// One goroutine may read while another writes; Close may be called from
// any goroutine and unblocks both.
type Conn struct {
	id       C.SRTSOCKET
	st       *sockState
	streamID string
	local    *net.UDPAddr
	remote   *net.UDPAddr
	linger   time.Duration
	tag      any

	closed    chan struct{}
	closeOnce sync.Once
	wrote     atomic.Bool

	rdl, wdl atomic.Int64 // deadlines, unix ns; 0 = none
	rt, wt   *time.Timer  // reused by the one reader and the one writer

	statsMu sync.Mutex
	last    Stats

	admitted func() // tells the listener its owner counts it; once
	release  func() // the listener's Decision.Release; once, at close

	causeMu sync.Mutex
	cause   error // why Watch ended the connection

	errq *errQueue // a dialed connection's own UDP socket's ICMP errors; nil when accepted
}

func newConn(e *engine, id C.SRTSOCKET, st *sockState, o Options) *Conn {
	c := &Conn{id: id, st: st, streamID: o.StreamID, linger: o.Linger, closed: make(chan struct{}), admitted: func() {}, release: func() {}}
	c.local = addrOf(id, false)
	c.remote = addrOf(id, true)
	return c
}

func addrOf(id C.SRTSOCKET, peer bool) *net.UDPAddr {
	var ip [16]byte
	var port C.int
	var fam C.int
	if peer {
		fam = C.rm_peername(id, (*C.uchar)(unsafe.Pointer(&ip[0])), &port)
	} else {
		fam = C.rm_sockname(id, (*C.uchar)(unsafe.Pointer(&ip[0])), &port)
	}
	return udpAddr(int(fam), ip[:], int(port))
}

func udpAddr(fam int, ip []byte, port int) *net.UDPAddr {
	switch fam {
	case 4:
		return &net.UDPAddr{IP: net.IP(append([]byte(nil), ip[:4]...)), Port: port}
	case 6:
		a := net.IP(append([]byte(nil), ip[:16]...))
		if v4 := a.To4(); v4 != nil {
			a = v4 // a v4 peer of a dual-stack listener
		}
		return &net.UDPAddr{IP: a, Port: port}
	}
	return &net.UDPAddr{}
}

// ID is libsrt's socket id.
func (c *Conn) ID() uint32 { return uint32(c.id) }

// StreamID is the stream id the caller sent (or, for a caller, set).
func (c *Conn) StreamID() string { return c.streamID }

// Tag is the value the listener's Decide attached to this connection.
func (c *Conn) Tag() any { return c.tag }

// LocalAddr and RemoteAddr are the socket's addresses.
func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Done is closed when the connection broke (peer closed, idle timeout)
// or was closed locally.
func (c *Conn) Done() <-chan struct{} { return c.st.broken }

// SetReadDeadline and SetWriteDeadline bound the next Reads and Writes
// (the zero time: no deadline). A passed deadline makes them fail with
// os.ErrDeadlineExceeded.
func (c *Conn) SetReadDeadline(t time.Time) error  { c.rdl.Store(unixNano(t)); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.Store(unixNano(t)); return nil }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// wait parks until ch is signalled, the connection breaks or closes, or
// the deadline passes. It returns nil when the operation should be
// retried.
func (c *Conn) wait(ch chan struct{}, dl int64, tp **time.Timer) error {
	var tc <-chan time.Time
	if dl != 0 {
		d := time.Until(time.Unix(0, dl))
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		if *tp == nil {
			*tp = time.NewTimer(d)
		} else {
			(*tp).Reset(d)
		}
		defer (*tp).Stop()
		tc = (*tp).C
	}
	select {
	case <-ch:
		return nil
	case <-c.closed:
		return ErrClosed
	case <-c.st.broken:
		return io.EOF
	case <-tc:
		return os.ErrDeadlineExceeded
	}
}

// Read reads one message into b (a message longer than b is an error).
// It returns io.EOF when the peer closed or went silent and nothing is
// left to read.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	broken := false
	for {
		rc := C.rm_recv(c.id, (*C.char)(unsafe.Pointer(&b[0])), C.int(len(b)))
		if rc > 0 {
			return int(rc), nil
		}
		code := -int(rc)
		if rc == 0 || code != int(C.SRT_EASYNCRCV) {
			return 0, c.ioErr("recvmsg", rc)
		}
		if broken {
			return 0, io.EOF
		}
		switch err := c.wait(c.st.rd, c.rdl.Load(), &c.rt); err {
		case nil:
		case io.EOF:
			broken = true // read what libsrt still holds, then EOF
		default:
			return 0, err
		}
	}
}

// Write sends b as one message, waiting while the send buffer is full.
func (c *Conn) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		rc := C.rm_send(c.id, (*C.char)(unsafe.Pointer(&b[0])), C.int(len(b)))
		if rc >= 0 {
			c.wrote.Store(true)
			return len(b), nil
		}
		if -int(rc) != int(C.SRT_EASYNCSND) {
			return 0, c.ioErr("sendmsg", rc)
		}
		if err := c.wait(c.st.wr, c.wdl.Load(), &c.wt); err != nil {
			return 0, err
		}
	}
}

func (c *Conn) ioErr(op string, rc C.int) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	switch -int(rc) {
	case int(C.SRT_ECONNLOST), int(C.SRT_ENOCONN), int(C.SRT_EINVSOCK):
		return io.EOF
	}
	if rc == 0 {
		return io.EOF
	}
	return srtErr(op, rc)
}

// Close waits, bounded by the linger time, until the peer acknowledged
// what was written and had its latency to play it out, then closes the
// socket. It is idempotent.
func (c *Conn) Close() error {
	c.close(true)
	return nil
}

// CloseNow closes the socket at once, dropping what is still queued.
func (c *Conn) CloseNow() error {
	c.close(false)
	return nil
}

// Admitted tells an accepted connection's listener that its owner now
// counts it among its connections: until then (or its close) the
// listener's Pending counts it, so that a connection limit checked in
// Decide sees it in one of the two. A no-op for a dialed connection.
func (c *Conn) Admitted() { c.admitted() }

func (c *Conn) close(linger bool) {
	c.closeOnce.Do(func() {
		defer c.admitted()
		if linger && c.wrote.Load() && c.linger >= 0 {
			c.drain()
		}
		c.Stats() // keep the final counters
		close(c.closed)
		eng.remove(c.id)
		C.srt_close(c.id)
		c.errq.close()
		c.st.fail()
		c.release()
	})
}

// drain waits until the send buffer is empty (everything acknowledged),
// then the peer's latency, bounded by the linger time.
func (c *Conn) drain() {
	peerLat, _ := getInt(c.id, C.SRTO_PEERLATENCY)
	bound := c.linger
	if bound == 0 {
		bound = time.Duration(peerLat)*time.Millisecond + 2*time.Second
	}
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for C.rm_sndbuffer(c.id) > 0 {
		select {
		case <-c.st.broken:
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
	select {
	case <-c.st.broken:
	case <-deadline.C:
	case <-time.After(time.Duration(peerLat) * time.Millisecond):
	}
}

// Latency returns the negotiated TSBPD delays: what this side's receiver
// uses and what the peer's receiver uses.
func (c *Conn) Latency() (recv, peer time.Duration) {
	r, _ := getInt(c.id, C.SRTO_RCVLATENCY)
	p, _ := getInt(c.id, C.SRTO_PEERLATENCY)
	return time.Duration(r) * time.Millisecond, time.Duration(p) * time.Millisecond
}

// EveryLossReport reports whether the connection retransmits at every
// loss report (SRTO_RETRANSMITALGO 0, Options.EveryLossReport).
func (c *Conn) EveryLossReport() bool {
	v, ok := getInt(c.id, C.SRTO_RETRANSMITALGO)
	return ok && v == 0
}

// Buffers returns the connection's receive buffer in bytes (SRTO_RCVBUF)
// and its flight window in packets (SRTO_FC).
func (c *Conn) Buffers() (rcvBuf, fc int) {
	rcvBuf, _ = getInt(c.id, C.SRTO_RCVBUF)
	fc, _ = getInt(c.id, C.SRTO_FC)
	return rcvBuf, fc
}

// Encrypted reports whether the connection's data is encrypted.
func (c *Conn) Encrypted() bool {
	v, ok := getInt(c.id, C.SRTO_KMSTATE)
	return ok && v == int(C.SRT_KM_S_SECURED)
}

// PBKeyLen is the AES key length in use (0 when unencrypted).
func (c *Conn) PBKeyLen() int {
	if !c.Encrypted() {
		return 0
	}
	v, _ := getInt(c.id, C.SRTO_PBKEYLEN)
	return v
}

// Stats are a connection's counters from srt_bistats: totals since the
// connection opened and instantaneous values.
type Stats struct {
	RTTMs           float64
	PacketsSent     uint64 // data packets, retransmissions included
	PacketsReceived uint64
	PacketsUnique   uint64 // received and handed to the application (no duplicates)
	PacketsSendLost uint64 // reported lost by the receiver (NAKs)
	PacketsRecvLost uint64 // gaps this receiver saw
	Retransmits     uint64 // sent again
	RecvRetransmits uint64 // received retransmissions
	SendDrops       uint64 // too late to send
	RecvDrops       uint64 // too late to play
	RecvBelated     uint64 // came after their play time
	NAKsSent        uint64
	ACKsReceived    uint64 // acknowledgement packets from the peer
	NAKsReceived    uint64 // loss reports from the peer
	BytesSent       uint64 // on the wire: payload and IP/UDP/SRT headers, retransmissions included
	BytesReceived   uint64
	SendBufferMs    int
	RecvBufferMs    int
	SendBufferPkts  int
	RecvBufferPkts  int     // received, not yet read (waiting for their play time or the reader)
	LinkMbps        float64 // estimated link capacity
	SendMbps        float64
	RecvMbps        float64
	RecvLatencyMs   int // negotiated TSBPD delay of this side's receiver
	PeerLatencyMs   int // and of the peer's
	// Stale says the socket was gone before its counters at the break
	// could be read: these are the last ones read, which miss what came
	// after them.
	Stale bool
}

// Stats reads the connection's statistics. Once the socket is gone
// (libsrt closes a broken socket on its own soon after, and Close closes
// it) it returns the counters read when it broke, or the last ones read.
func (c *Conn) Stats() Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if s, ok := statsOf(c.id); ok {
		c.last = s
		return s
	}
	c.st.finalMu.Lock()
	defer c.st.finalMu.Unlock()
	if c.st.final != nil {
		c.last = *c.st.final
		return c.last
	}
	last := c.last
	last.Stale = true
	return last
}

func statsOf(id C.SRTSOCKET) (Stats, bool) {
	var st C.SRT_TRACEBSTATS
	if C.rm_stats(id, &st) < 0 {
		return Stats{}, false
	}
	return Stats{
		RTTMs:           float64(st.msRTT),
		PacketsSent:     uint64(st.pktSentTotal),
		PacketsReceived: uint64(st.pktRecvTotal),
		PacketsUnique:   uint64(st.pktRecvUniqueTotal),
		PacketsSendLost: uint64(st.pktSndLossTotal),
		PacketsRecvLost: uint64(st.pktRcvLossTotal),
		Retransmits:     uint64(st.pktRetransTotal),
		RecvRetransmits: uint64(st.pktRcvRetrans),
		SendDrops:       uint64(st.pktSndDropTotal),
		RecvDrops:       uint64(st.pktRcvDropTotal),
		RecvBelated:     uint64(st.pktRcvBelated),
		NAKsSent:        uint64(st.pktSentNAKTotal),
		ACKsReceived:    uint64(st.pktRecvACKTotal),
		NAKsReceived:    uint64(st.pktRecvNAKTotal),
		BytesSent:       uint64(st.byteSentTotal),
		BytesReceived:   uint64(st.byteRecvTotal),
		SendBufferMs:    int(st.msSndBuf),
		RecvBufferMs:    int(st.msRcvBuf),
		SendBufferPkts:  int(st.pktSndBuf),
		RecvBufferPkts:  int(st.pktRcvBuf),
		LinkMbps:        float64(st.mbpsBandwidth),
		SendMbps:        float64(st.mbpsSendRate),
		RecvMbps:        float64(st.mbpsRecvRate),
		RecvLatencyMs:   int(st.msRcvTsbPdDelay),
		PeerLatencyMs:   int(st.msSndTsbPdDelay),
	}, true
}
