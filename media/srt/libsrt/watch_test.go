package libsrt

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

func udpAddrOf(t *testing.T, s string) *net.UDPAddr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// freePort is a loopback UDP port nothing listens on (bound, then closed).
func freePort(t *testing.T) *net.UDPAddr {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	a := c.LocalAddr().(*net.UDPAddr)
	c.Close()
	return a
}

// TestProbe: real sockets on loopback. A port nothing listens on is
// refused (the kernel's port unreachable), a live libsrt listener answers
// the induction (and is not disturbed: a caller connects after the
// probes), a bound socket that never answers is silent.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	t.Run("no listener", func(t *testing.T) {
		st, err := Probe(ctx, freePort(t), 200*time.Millisecond, 3)
		if err != nil || st != PeerRefused {
			t.Fatalf("got %s, %v; want refused", st, err)
		}
	})
	t.Run("live libsrt listener", func(t *testing.T) {
		l := listen(t, ListenConfig{})
		ac := acceptOne(t, l)
		for range 3 {
			st, err := Probe(ctx, udpAddrOf(t, l.Addr().String()), time.Second, 3)
			if err != nil || st != PeerAnswered {
				t.Fatalf("got %s, %v; want answered", st, err)
			}
		}
		conn, err := Dial(ctx, l.Addr().String(), Options{})
		if err != nil {
			t.Fatalf("a caller after the probes: %v", err)
		}
		defer conn.CloseNow()
		accepted(t, ac)
	})
	t.Run("silent port", func(t *testing.T) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st, err := Probe(ctx, c.LocalAddr().(*net.UDPAddr), 100*time.Millisecond, 2)
		if err != nil || st != PeerSilent {
			t.Fatalf("got %s, %v; want silent", st, err)
		}
	})
}

// udpProxy forwards one caller's datagrams to a listener and back, until
// it is told to drop everything (a blackhole) or closes its port (the
// listener's process killed: the port is unbound, the host still there).
type udpProxy struct {
	front *net.UDPConn
	drop  atomic.Bool
	// stall: the connection's datagrams are dropped both ways (no ACK
	// comes back) while other sources (a probe) still reach the listener
	// and get its answers: a live peer whose link makes no progress
	stall       atomic.Bool
	sideAnswers atomic.Int64 // answers side forwarded
	wg          sync.WaitGroup
}

func newUDPProxy(t *testing.T, to string) *udpProxy {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, udpAddrOf(t, to))
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{front: front}
	var client atomic.Pointer[net.UDPAddr]
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				back.Close()
				return
			}
			if p.drop.Load() {
				continue
			}
			if c := client.Load(); c != nil && !sameAddr(c, from) {
				p.side(t, to, from, buf[:n]) // not the connection: a probe
				continue
			}
			if p.stall.Load() {
				continue
			}
			client.Store(from)
			back.Write(buf[:n])
		}
	}()
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := back.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if a := client.Load(); a != nil && !p.drop.Load() && !p.stall.Load() {
				front.WriteToUDP(buf[:n], a)
			}
		}
	}()
	t.Cleanup(func() { front.Close(); p.wg.Wait() })
	return p
}

func (p *udpProxy) addr() string { return p.front.LocalAddr().String() }

func sameAddr(a, b *net.UDPAddr) bool { return a.Port == b.Port && a.IP.Equal(b.IP) }

// side forwards one datagram of another source than the connection (a
// probe) to the listener from a socket of its own and its answer back.
func (p *udpProxy) side(t *testing.T, to string, from *net.UDPAddr, b []byte) {
	c, err := net.DialUDP("udp", nil, udpAddrOf(t, to))
	if err != nil {
		return
	}
	c.Write(b)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer c.Close()
		buf := make([]byte, 2048)
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := c.Read(buf); err == nil {
			p.front.WriteToUDP(buf[:n], from)
			p.sideAnswers.Add(1)
		}
	}()
}

// watchedLink is a watched sender's link through a proxy to a libsrt
// listener (peer idle timeout 30 s, so only Watch ends it in a test's
// bound), a message every 5 ms until it ends, and the bytes the
// listener read.
func watchedLink(t *testing.T) (*udpProxy, *Conn, *atomic.Int64) {
	t.Helper()
	p, conn, got := proxiedLink(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go conn.Watch(ctx, true)
	return p, conn, got
}

// proxiedLink is watchedLink without the watch.
func proxiedLink(t *testing.T) (*udpProxy, *Conn, *atomic.Int64) {
	t.Helper()
	l := listen(t, ListenConfig{Decide: func(Request) Decision { return Decision{PeerIdleTimeout: 30 * time.Second} }})
	ac := acceptOne(t, l)
	p := newUDPProxy(t, l.Addr().String())
	conn, err := Dial(context.Background(), p.addr(), Options{PeerIdleTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	srv := accepted(t, ac)
	got := new(atomic.Int64)
	go func() { // the listener's reader: counts what arrives
		buf := make([]byte, 1500)
		for {
			n, err := srv.Read(buf)
			if err != nil {
				return
			}
			got.Add(int64(n))
		}
	}()
	go func() { // a live stream: a message every 5 ms until the link ends
		msg := make([]byte, 1316)
		for {
			if _, err := conn.Write(msg); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p, conn, got
}

// TestWatchEndsDeadPeer: a sender's link through a proxy to a libsrt
// listener; the peer's port goes away (killed) or goes silent
// (blackholed). The watched connection breaks with a cause that says
// which, long before libsrt's own peer idle timeout (set to 30 s, so
// only Watch can have ended it in the test's bound).
func TestWatchEndsDeadPeer(t *testing.T) {
	for _, c := range []struct {
		name, want string
		fail       func(p *udpProxy)
	}{
		{"killed", "port unreachable", func(p *udpProxy) { p.front.Close() }},
		{"blackholed", "did not answer", func(p *udpProxy) { p.drop.Store(true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, conn, got := watchedLink(t)
			poll.Until(t, 10*time.Second, "data through the proxy", func() bool { return got.Load() > 100*1316 })
			select {
			case <-conn.Done():
				t.Fatalf("link ended while the peer was alive: %v", conn.Cause())
			default:
			}
			c.fail(p)
			poll.Until(t, 15*time.Second, "the watched link to end", func() bool {
				select {
				case <-conn.Done():
					return true
				default:
					return false
				}
			})
			err := conn.Cause()
			if !errors.Is(err, ErrPeerDead) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("cause %v; want ErrPeerDead saying %q", err, c.want)
			}
		})
	}
}

// TestWatchKeepsAnsweringPeer: a sender's link whose ACKs stop for a
// second (many stall bounds and probe windows) while the listener still
// answers the probes, as a loaded or briefly cut off peer does, keeps its
// link: data flows again through the same connection afterwards.
func TestWatchKeepsAnsweringPeer(t *testing.T) {
	p, conn, got := watchedLink(t)
	poll.Until(t, 10*time.Second, "data through the proxy", func() bool { return got.Load() > 50*1316 })
	p.stall.Store(true)
	// the watch probes during the stall: wait for the listener to have
	// answered probes (a stall the watch saw), not for a time
	stalledAt := got.Load()
	poll.Until(t, 10*time.Second, "a probe answered during the stall", func() bool { return p.sideAnswers.Load() >= 1 })
	acks := conn.Stats().ACKsReceived
	poll.Until(t, 10*time.Second, "more probes answered during the stall", func() bool { return p.sideAnswers.Load() >= 3 })
	if conn.Stats().ACKsReceived != acks {
		t.Fatal("ACKs came through the stalled proxy")
	}
	p.stall.Store(false)
	poll.Until(t, 10*time.Second, "data after the stall", func() bool { return got.Load() > stalledAt+50*1316 })
	select {
	case <-conn.Done():
		t.Fatalf("the link of a peer that answered ended: %v", conn.Cause())
	default:
	}
}

// TestStallWatch: when the watch probes, from samples at given times
// (no clock involved).
func TestStallWatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rtt := 4 * time.Millisecond // stall bound: the 200 ms floor
	var w stallWatch
	steps := []struct {
		ms      int
		n       uint64
		pending bool
		probe   bool
	}{
		{0, 1, true, false},
		{50, 2, true, false},
		{240, 2, true, false},  // 190 ms without an ACK
		{250, 2, true, true},   // 200 ms: probe
		{300, 2, false, false}, // nothing pending: no stall
		{600, 2, false, false},
		{650, 2, true, false}, // pending again: the stall starts now
		{860, 2, true, true},
		{900, 3, true, false}, // an ACK: progress
	}
	for _, s := range steps {
		if got := w.observe(progress{n: s.n, pending: s.pending, rtt: rtt}, at(s.ms)); got != s.probe {
			t.Fatalf("at %d ms (count %d, pending %v): probe %v, want %v", s.ms, s.n, s.pending, got, s.probe)
		}
	}
	// a sender's stall is its ACKs': a round trip and 3 ACK periods, at
	// least 50 ms; a receiver's (above) at least 200 ms
	for _, c := range []struct {
		rtt       time.Duration
		quiet, at int // ms: no probe at quiet, a probe at at
	}{
		{4 * time.Millisecond, 40, 50},     // the 50 ms floor
		{40 * time.Millisecond, 60, 70},    // 40 ms + 30 ms
		{160 * time.Millisecond, 180, 190}, // 160 ms + 30 ms
	} {
		w = stallWatch{}
		p := progress{n: 7, pending: true, rtt: c.rtt, sending: true}
		w.observe(p, at(0))
		if w.observe(p, at(c.quiet)) {
			t.Fatalf("sender at RTT %s: probe after %d ms without an ACK", c.rtt, c.quiet)
		}
		if !w.observe(p, at(c.at)) {
			t.Fatalf("sender at RTT %s: no probe after %d ms without an ACK", c.rtt, c.at)
		}
		// an ACK: progress, and the stall starts again
		if w.observe(progress{n: 8, pending: true, rtt: c.rtt, sending: true}, at(c.at+5)) ||
			w.observe(progress{n: 8, pending: true, rtt: c.rtt, sending: true}, at(c.at+5+c.quiet)) {
			t.Fatalf("sender at RTT %s: probe before a whole stall after an ACK", c.rtt)
		}
		// a sender with nothing in flight expects no ACK
		w = stallWatch{}
		idle := progress{n: 7, pending: false, rtt: c.rtt, sending: true}
		if w.observe(idle, at(0)) || w.observe(idle, at(10*c.at)) {
			t.Fatalf("sender at RTT %s: probe with nothing in flight", c.rtt)
		}
	}
	// a sender whose ACKs stop at a loss hole while the peer's loss
	// reports come (heavy loss) makes progress; one with neither does not
	w = stallWatch{}
	st := Stats{RTTMs: 20, ACKsReceived: 40, NAKsReceived: 3, SendBufferPkts: 9}
	w.observe(sample(st, true), at(0))
	for ms := 30; ms <= 300; ms += 30 {
		st.NAKsReceived++
		if w.observe(sample(st, true), at(ms)) {
			t.Fatalf("probe at %d ms while loss reports come", ms)
		}
	}
	if w.observe(sample(st, true), at(330)) || !w.observe(sample(st, true), at(350)) {
		t.Fatal("no probe 50 ms after the last loss report")
	}

	// a peer that answers is asked again later, each time later: after
	// twice the stall bound, then 4 times
	for _, c := range []struct {
		name         string
		p            progress
		stall, first int // ms: the stall bound, when the first probe is answered
	}{
		{"receiver", progress{n: 5, pending: true, rtt: 100 * time.Millisecond}, 200, 500},
		{"sender", progress{n: 9, pending: true, rtt: 20 * time.Millisecond, sending: true}, 50, 60},
	} {
		w = stallWatch{}
		w.observe(c.p, at(0))
		if !w.observe(c.p, at(c.stall)) {
			t.Fatalf("%s: no probe after %d ms", c.name, c.stall)
		}
		answer := c.first
		for k := 2; k <= 4; k *= 2 {
			w.answered(c.p, at(answer))
			next := answer + k*c.stall
			if w.observe(c.p, at(next-10)) || !w.observe(c.p, at(next)) {
				t.Fatalf("%s: the next probe should come %d ms after the answer at %d ms", c.name, k*c.stall, answer)
			}
			answer = next + 10
		}
	}
}

// TestProbeRTT: the round trip of the answered handshake is returned; a
// peer that answers 100 ms late is never timed shorter than that, and a
// real listener answers with a positive RTT.
func TestProbeRTT(t *testing.T) {
	ctx := context.Background()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const delay = 100 * time.Millisecond
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			ans := append([]byte(nil), buf[:n]...)
			// the answer goes to the prober's socket id (the request's
			// handshake socket id field)
			copy(ans[12:16], buf[srtHdr+24:srtHdr+28])
			time.Sleep(delay)
			c.WriteToUDP(ans, from)
		}
	}()
	rtt, st, err := ProbeRTT(ctx, c.LocalAddr().(*net.UDPAddr), time.Second, 1)
	if err != nil || st != PeerAnswered || rtt < delay {
		t.Fatalf("late answerer: %s, %s, %v; want answered, at least %s", rtt, st, err, delay)
	}
	l := listen(t, ListenConfig{})
	rtt, st, err = ProbeRTT(ctx, udpAddrOf(t, l.Addr().String()), time.Second, 3)
	if err != nil || st != PeerAnswered || rtt <= 0 {
		t.Fatalf("libsrt listener: %s, %s, %v; want answered with a positive RTT", rtt, st, err)
	}
}

// TestErrQueueSeesPortUnreachable: a caller's own libsrt socket gets the
// ICMP port unreachables of its packets once the peer's port is gone
// (the proxy's port closed), and none while the peer is there.
func TestErrQueueSeesPortUnreachable(t *testing.T) {
	p, conn, got := proxiedLink(t) // no watch: nothing else reads the queue
	eq := conn.errq
	if eq == nil {
		t.Fatal("no error queue for a caller's socket")
	}
	poll.Until(t, 10*time.Second, "data through the proxy", func() bool { return got.Load() > 50*1316 })
	if eq.refused() {
		t.Fatal("port unreachable reported while the peer's port is open")
	}
	p.front.Close()
	poll.Until(t, 10*time.Second, "a port unreachable for the link's packets", eq.refused)
}

// TestWatchReceiverDrains: a watched receiver's peer (the listener that
// sends) is killed while the receiver's TSBPD buffer holds half a second
// of the stream. The link ends with ErrPeerDead, but only after its
// reader read every message the receiver had got: closed at once, it
// lost them (a pull from a killed center lost ~0.9 s of media).
func TestWatchReceiverDrains(t *testing.T) {
	p, conn := watchedReceiver(t, 500*time.Millisecond)
	read := new(atomic.Int64)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				done <- err
				return
			}
			read.Add(1)
		}
	}()
	poll.Until(t, 10*time.Second, "messages read", func() bool { return read.Load() > 100 })
	poll.Until(t, 10*time.Second, "the receiver holds messages not read yet", func() bool { return conn.Stats().RecvBufferPkts > 20 })
	p.front.Close() // killed: the receiver's ACKs get port unreachables
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the watched receiver did not end")
	}
	if err := conn.Cause(); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("cause %v; want ErrPeerDead", err)
	}
	st := conn.Stats()
	if got := read.Load(); uint64(got) != st.PacketsUnique-st.RecvDrops {
		t.Errorf("read %d messages of the %d the receiver got (%d dropped too late)", got, st.PacketsUnique, st.RecvDrops)
	}
}

// TestWatchReceiverUnreadEnds: a watched receiver whose reader takes
// nothing does not hold the link open on its buffer once the peer is
// dead: it ends although the buffer still holds messages.
func TestWatchReceiverUnreadEnds(t *testing.T) {
	p, conn := watchedReceiver(t, 200*time.Millisecond)
	poll.Until(t, 10*time.Second, "the receiver holds messages", func() bool { return conn.Stats().RecvBufferPkts > 20 })
	p.front.Close()
	poll.Until(t, 15*time.Second, "the unread receiver to end", func() bool {
		select {
		case <-conn.Done():
			return true
		default:
			return false
		}
	})
	if err := conn.Cause(); !errors.Is(err, ErrPeerDead) {
		t.Fatalf("cause %v; want ErrPeerDead", err)
	}
}

// watchedReceiver is a watched receiving link through a proxy, with the
// listener's side sending a live stream: a message every 5 ms.
func watchedReceiver(t *testing.T, latency time.Duration) (*udpProxy, *Conn) {
	t.Helper()
	l := listen(t, ListenConfig{Decide: func(Request) Decision { return Decision{PeerIdleTimeout: 30 * time.Second} }})
	ac := acceptOne(t, l)
	p := newUDPProxy(t, l.Addr().String())
	conn, err := Dial(context.Background(), p.addr(), Options{PeerIdleTimeout: 30 * time.Second, Latency: latency})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	srv := accepted(t, ac)
	t.Cleanup(func() { srv.CloseNow() })
	go func() {
		msg := make([]byte, 1316)
		for {
			if _, err := srv.Write(msg); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go conn.Watch(ctx, false)
	return p, conn
}
