package libsrt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// libsrt notices a dead peer only by its own idle detection: a peer idle
// timeout after at least 16 expirations of its response timer (seconds
// even with SRTO_PEERIDLETIMEO at 1s), and it never looks at the ICMP
// port unreachable of a killed peer (its UDP socket is not connected, so
// the kernel reports nothing to it). Watch finds such a peer sooner: a
// caller's link reads those reports itself (errQueue), and when the
// connection stops making progress it asks the peer's listener port
// directly.

// PeerState is what a Probe found at a peer's SRT port.
type PeerState int

const (
	// PeerAnswered: an SRT listener answered the induction handshake.
	PeerAnswered PeerState = iota
	// PeerRefused: the peer's host answered that nothing listens on the
	// port (ICMP port unreachable, seen as ECONNREFUSED).
	PeerRefused
	// PeerSilent: no answer at all to any try (host down, path
	// blackholed, port filtered).
	PeerSilent
)

func (s PeerState) String() string {
	switch s {
	case PeerAnswered:
		return "answered"
	case PeerRefused:
		return "refused"
	}
	return "silent"
}

// Handshake constants of an induction request (SRT's UDT-compatible
// first handshake, as every caller sends it).
const (
	probeLen       = srtHdr + hsBody
	hsVersionUDT4  = 4
	udtDgram       = 2
	probeMSS       = 1500
	probeFlightWin = 8192
)

// inductionRequest is a caller's induction handshake with socket id id.
// A listener answers it statelessly (a cookie, no connection state, no
// listen callback); the filter of a relaymesh listener lets it pass.
func inductionRequest(id uint32) []byte {
	b := make([]byte, probeLen)
	be := binary.BigEndian
	be.PutUint32(b[0:], 0x80000000) // control packet, type 0: handshake
	// b[4:8] type-specific, b[8:12] timestamp, b[12:16] destination socket id: 0 (the listener)
	h := b[srtHdr:]
	be.PutUint32(h[0:], hsVersionUDT4)
	be.PutUint32(h[4:], udtDgram)
	var isn [4]byte
	_, _ = rand.Read(isn[:])
	be.PutUint32(h[8:], be.Uint32(isn[:])&0x7fffffff)
	be.PutUint32(h[12:], probeMSS)
	be.PutUint32(h[16:], probeFlightWin)
	be.PutUint32(h[hsTypeOff:], hsInduction)
	be.PutUint32(h[24:], id)
	// cookie 0, peer address zero: the listener fills in what it saw
	return b
}

// isInductionAnswer reports whether b is a handshake addressed to id.
func isInductionAnswer(b []byte, id uint32) bool {
	be := binary.BigEndian
	return len(b) >= probeLen && be.Uint32(b[0:])&0xffff0000 == 0x80000000 && be.Uint32(b[12:]) == id
}

// Probe asks the SRT port at addr whether a listener is there: it sends
// an induction handshake from a connected UDP socket of its own (not the
// connection's) up to tries times, waiting wait for each answer. A
// listener's answer is PeerAnswered, ECONNREFUSED (the kernel's report
// of an ICMP port unreachable) PeerRefused, nothing PeerSilent. The
// error is only for a probe that could not be made (no socket, ctx
// ended); its state is then PeerAnswered, which ends nothing.
//
// Why a handshake and not a datagram a listener ignores: the peer's
// kernel sends port unreachables at most about one a second to a host
// after a burst of six (net.ipv4.icmp_ratelimit), and the connection's
// own sender, still sending into the dead port, spends them; an answer
// from a live listener does not depend on them, and its absence covers
// the blackhole too.
func Probe(ctx context.Context, addr *net.UDPAddr, wait time.Duration, tries int) (PeerState, error) {
	st, _, err := probe(ctx, addr, wait, tries)
	return st, err
}

// ProbeRTT is Probe that also returns the round trip of the answered
// handshake (0 unless PeerAnswered with a nil error): a caller about to
// dial a peer whose RTT it does not know yet sizes its latency from it.
func ProbeRTT(ctx context.Context, addr *net.UDPAddr, wait time.Duration, tries int) (time.Duration, PeerState, error) {
	st, rtt, err := probe(ctx, addr, wait, tries)
	return rtt, st, err
}

func probe(ctx context.Context, addr *net.UDPAddr, wait time.Duration, tries int) (PeerState, time.Duration, error) {
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return PeerAnswered, 0, fmt.Errorf("srt probe %s: %w", addr, err)
	}
	defer c.Close()
	var idb [4]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint32(idb[:])&0x3fffffff | 1 // like libsrt's ids: nonzero, below 2^30
	req := inductionRequest(id)
	buf := make([]byte, 1500)
	for range max(tries, 1) {
		if err := ctx.Err(); err != nil {
			return PeerAnswered, 0, err
		}
		sent := time.Now()
		if _, err := c.Write(req); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return PeerRefused, 0, nil // a port unreachable of the previous try
			}
			return PeerAnswered, 0, fmt.Errorf("srt probe %s: %w", addr, err)
		}
		end := sent.Add(wait)
		for {
			st, done := readAnswer(c, buf, id, end)
			if done {
				var rtt time.Duration
				if st == PeerAnswered {
					// an answer to an earlier try that came after
					// its wait is timed from this one (too short),
					// which a wait longer than the path's RTT avoids
					rtt = time.Since(sent)
				}
				return st, rtt, nil
			}
			if !time.Now().Before(end) {
				break
			}
		}
	}
	return PeerSilent, 0, nil
}

// readAnswer reads until end: (PeerAnswered, true) for the answer,
// (PeerRefused, true) for ECONNREFUSED, done false when end passed or a
// datagram that is not the answer came. A goroutine that runs late (a
// loaded host) still sees an answer that came in time: after the
// deadline it reads once more without one.
func readAnswer(c *net.UDPConn, buf []byte, id uint32, end time.Time) (PeerState, bool) {
	c.SetReadDeadline(end)
	n, err := c.Read(buf)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return PeerRefused, true
	}
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return PeerSilent, false
		}
		n, err = readNow(c, buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return PeerRefused, true
		}
		if err != nil || n == 0 {
			return PeerSilent, false
		}
	}
	if isInductionAnswer(buf[:n], id) {
		return PeerAnswered, true
	}
	return PeerSilent, false
}

// readNow reads what is queued on c without waiting.
func readNow(c *net.UDPConn, buf []byte) (int, error) {
	c.SetReadDeadline(time.Time{})
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
		return true // never wait
	})
	if err != nil {
		return 0, err
	}
	if errors.Is(rerr, syscall.EAGAIN) {
		return 0, nil
	}
	return n, rerr
}

// ErrPeerDead is the cause of a connection Watch ended.
var ErrPeerDead = errors.New("srt peer dead")

// Timings of Watch, from the connection's RTT. A probe is one datagram
// that a live listener answers statelessly, so probing early costs a
// healthy link nothing: a peer that answers keeps its link whatever the
// stall. What ends a link is only a refused or an unanswered probe.
const (
	watchTick = 10 * time.Millisecond
	// ackPeriod is libsrt's full ACK interval: a sender with data in
	// flight gets an ACK at least this often from a live peer.
	ackPeriod = 10 * time.Millisecond
	// minSendStall: a sender with data in flight probes after this long
	// without an ACK (at least; see stallAfter).
	minSendStall = 50 * time.Millisecond
	// minRecvStall: a receiver probes after this long without data. Its
	// data comes at the stream's pace, not the protocol's (a low frame
	// rate, a pause), so it waits longer than a sender.
	minRecvStall  = 200 * time.Millisecond
	minProbeWait  = 50 * time.Millisecond // wait for each probe answer
	probeTries    = 3
	maxProbeEvery = 5 * time.Second // a peer that answered is asked again at most this often while stalled
)

// stallAfter is how long a connection may make no progress before its
// peer is probed. A sender (its progress: the peer's ACKs and loss
// reports): one round trip and 3 ACK periods (the first
// ACK of data sent after an idle moment takes a round trip), at least
// minSendStall. A receiver: 2 round trips, at least minRecvStall.
func stallAfter(rtt time.Duration, sending bool) time.Duration {
	if sending {
		return max(rtt+3*ackPeriod, minSendStall)
	}
	return max(2*rtt, minRecvStall)
}

// probeWait is how long a probe waits for each answer: 1.5 round trips,
// at least minProbeWait. An answer to any try counts, so the first try's
// answer has all probeTries waits to come.
func probeWait(rtt time.Duration) time.Duration { return max(rtt+rtt/2, minProbeWait) }

// progress is what Watch samples: a counter that moves while the peer
// is alive, and whether it should be moving.
type progress struct {
	n       uint64
	pending bool
	rtt     time.Duration
	sending bool // n counts ACKs and loss reports of sent data, else received data
}

func sample(st Stats, sending bool) progress {
	p := progress{rtt: time.Duration(st.RTTMs * float64(time.Millisecond)), sending: sending}
	if sending {
		// acknowledgements come every 10 ms while sent data is
		// unacknowledged and the peer's acknowledged sequence moves; under
		// heavy loss it stops at a hole, and the peer's loss reports are
		// then what it sends: either is a live peer
		p.n, p.pending = st.ACKsReceived+st.NAKsReceived, st.SendBufferPkts > 0
	} else {
		// a live stream's data; an idle one only costs a probe now and then
		p.n, p.pending = st.PacketsReceived, true
	}
	return p
}

// stallWatch decides when to probe from successive samples.
type stallWatch struct {
	last      uint64
	since     time.Time // when the counter last moved, or pending began
	nextProbe time.Time
	backoff   time.Duration
}

// observe takes a sample at now and reports whether to probe.
func (w *stallWatch) observe(p progress, now time.Time) bool {
	if p.n != w.last || !p.pending || w.since.IsZero() {
		w.last, w.since, w.backoff = p.n, now, 0
		w.nextProbe = time.Time{}
		return false
	}
	stall := stallAfter(p.rtt, p.sending)
	if now.Sub(w.since) < stall || now.Before(w.nextProbe) {
		return false
	}
	return true
}

// answered records a probe the peer answered: ask again later, each time
// later, while the stall lasts.
func (w *stallWatch) answered(p progress, now time.Time) {
	if w.backoff == 0 {
		w.backoff = stallAfter(p.rtt, p.sending)
	}
	w.backoff = min(2*w.backoff, maxProbeEvery)
	w.nextProbe = now.Add(w.backoff)
}

// Watch runs until ctx ends or c closes. A caller's link ends at the
// first ICMP port unreachable from the peer for its own packets
// (errQueue: a killed peer's host sends one at once). While the peer makes progress
// (a sender's data acknowledged, a receiver's data arriving) it only
// samples libsrt's counters every 10 ms; when there is none for
// stallAfter (a sender: a round trip and 3 ACK periods, at least 50 ms;
// a receiver: 2 round trips, at least 200 ms) it probes the peer's port
// (Probe: 3 tries, 1.5 round trips and at least 50 ms each). Refused or
// silent: it closes c with a cause wrapping ErrPeerDead (Cause), a
// sender's at once, a receiver's once it delivered what it holds
// (endDead).
// A peer that answers is left to recover (or to libsrt's idle timeout),
// and probed again at growing intervals while the stall lasts, so a
// loaded host that lags does not lose its link.
func (c *Conn) Watch(ctx context.Context, sending bool) {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	var w stallWatch
	eq := c.errq
	for {
		if !c.await(ctx, t.C) {
			return
		}
		if eq != nil && eq.refused() {
			c.endDead(ctx, sending, fmt.Errorf("%w: its host reported the port unreachable (ICMP) for the link's own packets", ErrPeerDead))
			return
		}
		st, ok := statsOf(c.id)
		if !ok {
			return
		}
		p := sample(st, sending)
		if !w.observe(p, time.Now()) {
			continue
		}
		stalled := time.Since(w.since)
		state, err := Probe(ctx, c.remote, probeWait(p.rtt), probeTries)
		if err != nil {
			w.answered(p, time.Now()) // could not ask: do not end the link for it
			continue
		}
		if state == PeerAnswered {
			w.answered(p, time.Now())
			continue
		}
		why := "nothing listens on its port any more (port unreachable)"
		if state == PeerSilent {
			why = fmt.Sprintf("its port did not answer %d handshake probes", probeTries)
		}
		c.endDead(ctx, sending, fmt.Errorf("%w: no progress for %s and %s", ErrPeerDead, stalled.Round(time.Millisecond), why))
		return
	}
}

// endDead ends a connection whose peer Watch found dead. A sender's ends
// at once. A receiver's still holds up to its latency of the stream
// (TSBPD: what came before the peer died, waiting for its play time): it
// records the cause at once and closes only once its reader has read
// what the receive buffer holds. It gives up when the reader stops
// taking packets: drainSlack after the latency has passed, or after the
// last packet the reader took, whichever is later, so a reader that is
// only late (a loaded host) still gets the whole buffer and one that
// does not read at all cannot hold the link open. Closed at once, a pull
// from a killed center lost that much media (~0.9 s at 230 ms RTT) and
// its players waited that much longer for the next source.
func (c *Conn) endDead(ctx context.Context, sending bool, err error) {
	if sending {
		c.breakWith(err)
		return
	}
	c.setCause(err)
	st, ok := statsOf(c.id)
	if !ok {
		c.breakWith(err)
		return
	}
	giveUp := time.Now().Add(time.Duration(st.RecvLatencyMs)*time.Millisecond + drainSlack)
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for left := st.RecvBufferPkts; left > 0; {
		if !c.await(ctx, t.C) {
			return
		}
		if st, ok = statsOf(c.id); !ok {
			break
		}
		now := time.Now()
		if st.RecvBufferPkts < left {
			giveUp = later(giveUp, now.Add(drainSlack))
		}
		left = st.RecvBufferPkts
		if left > 0 && now.After(giveUp) {
			break
		}
	}
	c.breakWith(err)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// await waits for tick; false when ctx ended or c closed or broke first.
func (c *Conn) await(ctx context.Context, tick <-chan time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c.closed:
		return false
	case <-c.st.broken:
		return false
	case <-tick:
		return true
	}
}

// drainSlack is how long a dead peer's receiver waits for its reader to
// take a packet, once the latency has passed (endDead).
const drainSlack = 250 * time.Millisecond

// breakWith closes c at once and records why.
func (c *Conn) breakWith(err error) {
	c.setCause(err)
	c.CloseNow()
}

// setCause records why Watch ends c (the first cause stays).
func (c *Conn) setCause(err error) {
	c.causeMu.Lock()
	if c.cause == nil {
		c.cause = err
	}
	c.causeMu.Unlock()
}

// Cause is why Watch ended the connection, or (a receiver's, which
// delivers what it holds first: endDead) is ending it; nil when it did
// not.
func (c *Conn) Cause() error {
	c.causeMu.Lock()
	defer c.causeMu.Unlock()
	return c.cause
}
