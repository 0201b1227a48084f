package hostile

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/test/hostile/wire"
)

// Peer is what the fuzzer learned from the listener's answers: the
// induction cookie for its address and the socket id of the last
// connection the listener accepted. Case generators put these in so that
// mutated packets get past the cookie check and reach live connections.
type Peer struct {
	Cookie    atomic.Uint32
	Socket    atomic.Uint32 // the listener's socket id of our last accepted connection
	Accepted  atomic.Int64  // conclusions the listener answered with a conclusion
	Rejected  atomic.Int64  // handshakes answered with a reject code
	Answers   atomic.Int64  // datagrams received from the listener
	Handshake atomic.Int64  // handshake answers received
}

// SRTFuzz sends mutated SRT datagrams from one UDP socket to one listener.
type SRTFuzz struct {
	Seed     uint64
	Target   string   // host:port
	StreamID []string // stream ids used by the well-formed conclusions
	Rate     int      // datagrams per second (paced in 10 ms batches)

	Peer Peer

	conn *net.UDPConn
	ours uint32 // our socket id of the current session
	wg   sync.WaitGroup
	last ring
}

// ring keeps the last datagrams sent, for the report of a crash.
type ring struct {
	mu   sync.Mutex
	buf  [32]sent
	next int
}

type sent struct {
	i    int
	kind string
	p    []byte
}

func (r *ring) add(s sent) {
	r.mu.Lock()
	r.buf[r.next%len(r.buf)] = s
	r.next++
	r.mu.Unlock()
}

// Dump lists the last datagrams sent, oldest first, in hex (the first
// 128 bytes of each; the full bytes come back from the seed and index).
func (f *SRTFuzz) Dump() string {
	f.last.mu.Lock()
	defer f.last.mu.Unlock()
	var b strings.Builder
	for k := range len(f.last.buf) {
		s := f.last.buf[(f.last.next+k)%len(f.last.buf)]
		if s.p == nil && s.kind == "" {
			continue
		}
		h := s.p
		if len(h) > 128 {
			h = h[:128]
		}
		fmt.Fprintf(&b, "  #%d %s (%d bytes) %s\n", s.i, s.kind, len(s.p), hex.EncodeToString(h))
	}
	return b.String()
}

// Open binds the fuzzer's socket and starts reading the answers.
func (f *SRTFuzz) Open() error {
	raddr, err := net.ResolveUDPAddr("udp", f.Target)
	if err != nil {
		return err
	}
	f.conn, err = net.DialUDP("udp", nil, raddr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", f.Target, err)
	}
	f.conn.SetReadBuffer(1 << 20)
	f.wg.Go(f.read)
	return nil
}

// Close closes the socket and waits for the reader.
func (f *SRTFuzz) Close() {
	if f.conn != nil {
		f.conn.Close()
		f.wg.Wait()
	}
}

func (f *SRTFuzz) read() {
	buf := make([]byte, 65536)
	for {
		n, err := f.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // ICMP port unreachable while the listener is down
		}
		f.Peer.Answers.Add(1)
		hs, ok := wire.IsHandshake(buf[:n])
		if !ok {
			continue
		}
		f.Peer.Handshake.Add(1)
		switch {
		case hs.Type == wire.HSInduction && hs.Cookie != 0:
			f.Peer.Cookie.Store(hs.Cookie)
		case hs.Type == wire.HSConclusion:
			f.Peer.Accepted.Add(1)
			f.Peer.Socket.Store(hs.SocketID)
		case hs.Type >= 1000 && hs.Type < 1100:
			f.Peer.Rejected.Add(1)
		}
	}
}

func (f *SRTFuzz) send(i int, kind string, p []byte) {
	f.last.add(sent{i: i, kind: kind, p: p})
	f.conn.Write(p) // errors (ICMP unreachable) are expected while hostile
}

// Run sends datagrams from..to-1 (case i is built from wire.NewRand(Seed,
// i)), paced at Rate, and a real handshake every 1000 datagrams so that
// the mutated control and data packets also reach live connections.
// alive is polled every batch; Run stops early and returns the index
// reached when it reports false.
func (f *SRTFuzz) Run(from, to int, alive func() bool) int {
	rate := max(f.Rate, 100)
	batch := max(rate/100, 1)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	loopback := netip.MustParseAddr("127.0.0.1")
	for i := from; i < to; {
		for k := 0; k < batch && i < to; k++ {
			if i%1000 == 0 {
				f.handshake(i, loopback)
			}
			r := wire.NewRand(f.Seed, uint64(i))
			kind, p := SRTCase(r, &f.Peer, f.ours, f.StreamID)
			f.send(i, kind, p)
			i++
		}
		<-tick.C
		if !alive() {
			return i
		}
	}
	return to
}

// handshake runs induction and a well-formed conclusion (it does not wait
// for the answers: the reader records them for the cases that follow).
func (f *SRTFuzz) handshake(i int, peer netip.Addr) {
	r := wire.NewRand(f.Seed^0x5a5a, uint64(i))
	f.ours = r.Uint32() | 1
	f.send(i, "real induction", wire.Induction(f.ours, peer))
	// the cookie of a previous induction is still good (libsrt's cookie
	// changes once a minute and accepts the previous one)
	if c := f.Peer.Cookie.Load(); c != 0 && len(f.StreamID) > 0 {
		sid := f.StreamID[r.IntN(len(f.StreamID))]
		f.send(i, "real conclusion", wire.Conclusion(f.ours, c, peer, sid))
	}
}

// Handshake does one real induction and conclusion and waits (up to d)
// for the listener's answer; it reports whether the listener accepted.
func (f *SRTFuzz) Handshake(streamID string, d time.Duration) bool {
	peer := netip.MustParseAddr("127.0.0.1")
	f.ours = rand.Uint32() | 1
	deadline := time.Now().Add(d)
	acc := f.Peer.Accepted.Load()
	for time.Now().Before(deadline) {
		f.send(-1, "induction", wire.Induction(f.ours, peer))
		time.Sleep(100 * time.Millisecond)
		if c := f.Peer.Cookie.Load(); c != 0 {
			f.send(-1, "conclusion", wire.Conclusion(f.ours, c, peer, streamID))
			time.Sleep(100 * time.Millisecond)
			if f.Peer.Accepted.Load() > acc {
				return true
			}
		}
	}
	return false
}

// SRTCase builds one hostile datagram from r: its kind (for the report)
// and its bytes.
func SRTCase(r *rand.Rand, peer *Peer, ours uint32, streamIDs []string) (string, []byte) {
	lo := netip.MustParseAddr("127.0.0.1")
	cookie := peer.Cookie.Load()
	sock := peer.Socket.Load()
	pickCookie := func() uint32 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Uint32()
		}
		return cookie
	}
	pickSocket := func() (string, uint32) {
		switch r.IntN(5) {
		case 0:
			return "socket 0", 0
		case 1:
			return "random socket", r.Uint32()
		case 2:
			return "next socket", sock + 1
		}
		return "right socket", sock
	}
	mutate := func(kind string, p []byte) (string, []byte) {
		if r.IntN(3) == 0 {
			return kind, p // well-formed (or exactly as built)
		}
		return kind + ", mutated", wire.Mutate(r, p, 6)
	}
	sid := "publish:hostile/x"
	if len(streamIDs) > 0 {
		sid = streamIDs[r.IntN(len(streamIDs))]
	}
	switch n := r.IntN(100); {
	case n < 10: // induction
		h := wire.Handshake{Version: 4, ExtField: 2, ISN: r.Uint32() & 0x7fffffff, MTU: 1500, FlowWindow: 8192,
			Type: wire.HSInduction, SocketID: r.Uint32(), Cookie: pickCookie(), PeerIP: lo}
		if r.IntN(4) == 0 {
			h.Version = []uint32{0, 3, 5, 6, 0xffffffff}[r.IntN(5)]
		}
		if r.IntN(4) == 0 {
			h.MTU = []uint32{0, 1, 76, 65536, 0xffffffff}[r.IntN(5)]
			h.FlowWindow = []uint32{0, 1, 0xffffffff}[r.IntN(3)]
		}
		return mutate("induction", wire.HandshakePacket(0, h))
	case n < 50: // conclusion with extensions
		kind, exts := conclusionExts(r, sid)
		h := wire.Handshake{Version: 5, ExtField: extFlags(r, exts), ISN: r.Uint32() & 0x7fffffff, MTU: 1500,
			FlowWindow: 8192, Type: wire.HSConclusion, SocketID: ours, Cookie: pickCookie(), PeerIP: lo}
		if r.IntN(6) == 0 {
			h.Type = []uint32{wire.HSWaveahand, wire.HSAgreement, wire.HSDone, 1000, 1017, r.Uint32()}[r.IntN(6)]
			kind += fmt.Sprintf(", hs type %#x", h.Type)
		}
		if r.IntN(8) == 0 {
			h.Version = []uint32{4, 6, 0}[r.IntN(3)]
			kind += fmt.Sprintf(", version %d", h.Version)
		}
		if r.IntN(8) == 0 {
			h.Encryption = uint16(r.IntN(8))
		}
		p := wire.HandshakePacket(0, h, exts...)
		if r.IntN(6) == 0 { // garbage after a valid block
			p = append(p, wire.RandBytes(r, 1+r.IntN(40))...)
			kind += ", trailing garbage"
		}
		return mutate("conclusion "+kind, p)
	case n < 80: // control packets
		sk, dst := pickSocket()
		kind, p := controlCase(r, dst)
		return mutate(kind+", "+sk, p)
	case n < 95: // data packets with random headers
		sk, dst := pickSocket()
		h := wire.DataHeader{Seq: r.Uint32(), Position: uint8(r.IntN(4)), InOrder: r.IntN(2) == 0,
			KeyFlags: uint8(r.IntN(4)), Rexmit: r.IntN(2) == 0, MsgNo: r.Uint32(), Timestamp: r.Uint32(), DstSocket: dst}
		var payload []byte
		if r.IntN(2) == 0 { // MPEG-TS looking
			for range 1 + r.IntN(7) {
				ts := wire.RandBytes(r, 188)
				ts[0] = 0x47
				payload = append(payload, ts...)
			}
		} else {
			payload = wire.RandBytes(r, r.IntN(1500))
		}
		return mutate("data, "+sk, wire.Data(h, payload))
	default: // noise
		return "random bytes", wire.RandBytes(r, r.IntN(1600))
	}
}

// conclusionExts picks extension blocks: every type, some with lying
// lengths (truncated or oversized blocks).
func conclusionExts(r *rand.Rand, sid string) (string, []wire.Ext) {
	var kinds []string
	var exts []wire.Ext
	add := func(k string, e wire.Ext) { kinds = append(kinds, k); exts = append(exts, e) }
	if r.IntN(4) != 0 {
		hs := wire.HSReq(wire.SRTVersion, wire.DefaultHSFlags, uint16(r.IntN(1000)), uint16(r.IntN(1000)))
		if r.IntN(5) == 0 {
			hs = wire.HSReq([]uint32{0, 0x010000, 0x010300, 0xffffffff}[r.IntN(4)], r.Uint32(), 0xffff, 0)
		}
		typ := wire.ExtHSReq
		if r.IntN(6) == 0 {
			typ = wire.ExtHSRsp
		}
		add(fmt.Sprintf("ext %d", typ), wire.E(typ, hs))
	}
	if r.IntN(3) != 0 {
		s := sid
		switch r.IntN(6) {
		case 0:
			s = strings.Repeat("A", 1+r.IntN(800))
		case 1:
			s = string(wire.RandBytes(r, r.IntN(64)))
		case 2:
			s = "#!::r=live/canary,m=" + []string{"publish", "request", "bidirectional", ""}[r.IntN(4)]
		}
		add("sid", wire.E(wire.ExtSID, wire.String4(s)))
	}
	if r.IntN(3) == 0 {
		km := wire.DefaultKM()
		switch r.IntN(8) {
		case 0:
			km.KLen = []int{0, 8, 20, 24, 32, 64, 252}[r.IntN(7)]
		case 1:
			km.RawSLenW, km.RawKLenW = r.IntN(256), r.IntN(256) // lengths that disagree with the bytes
		case 2:
			km.Wrap = km.Wrap[:r.IntN(len(km.Wrap))]
		case 3:
			km.KK = 3 // both keys, one wrapped key given
		case 4:
			km.Version, km.PT, km.Sign = uint8(r.IntN(8)), uint8(r.IntN(16)), uint16(r.Uint32())
		case 5:
			km.Cipher, km.SE = uint8(r.IntN(256)), uint8(r.IntN(256))
		case 6:
			km.Salt = wire.RandBytes(r, r.IntN(40))
		}
		typ := wire.ExtKMReq
		if r.IntN(5) == 0 {
			typ = wire.ExtKMRsp
		}
		add(fmt.Sprintf("km ext %d", typ), wire.E(typ, km.Bytes()))
	}
	if r.IntN(4) == 0 {
		add("congestion", wire.E(wire.ExtCongestion, wire.String4([]string{"live", "file", "", strings.Repeat("x", 300)}[r.IntN(4)])))
	}
	if r.IntN(4) == 0 {
		add("filter", wire.E(wire.ExtFilter, wire.String4([]string{"fec,cols:10,rows:5", "fec", "fec,cols:0,rows:0", "fec,cols:-1,rows:99999", "x,y:z"}[r.IntN(5)])))
	}
	if r.IntN(5) == 0 {
		add("group", wire.E(wire.ExtGroup, wire.Group(r.Uint32(), uint8(r.IntN(5)), uint8(r.IntN(256)), uint16(r.Uint32()))))
	}
	if r.IntN(6) == 0 {
		add("unknown ext", wire.E(uint16(9+r.IntN(100)), wire.RandBytes(r, r.IntN(32))))
	}
	if len(exts) > 0 && r.IntN(3) == 0 { // one block lies about its length
		i := r.IntN(len(exts))
		words := (len(exts[i].Content) + 3) / 4
		exts[i].Words = []int{0, words - 1, words + 1, words + 50, 0xffff}[r.IntN(5)]
		if exts[i].Words < 0 {
			exts[i].Words = 0
		}
		kinds[i] += fmt.Sprintf(" (length %d words, has %d)", exts[i].Words, words)
	}
	if r.IntN(10) == 0 && len(exts) > 0 { // a repeated block
		exts = append(exts, exts[r.IntN(len(exts))])
		kinds = append(kinds, "repeated")
	}
	return strings.Join(kinds, "+"), exts
}

func extFlags(r *rand.Rand, exts []wire.Ext) uint16 {
	if r.IntN(5) == 0 {
		return uint16(r.Uint32())
	}
	var f uint16
	for _, e := range exts {
		switch e.Type {
		case wire.ExtHSReq, wire.ExtHSRsp:
			f |= wire.FlagHSReq
		case wire.ExtKMReq, wire.ExtKMRsp:
			f |= wire.FlagKMReq
		default:
			f |= wire.FlagConfig
		}
	}
	return f
}

// controlCase builds a control packet of a random type with a plausible,
// short, long or random body.
func controlCase(r *rand.Rand, dst uint32) (string, []byte) {
	ts := r.Uint32()
	seq := r.Uint32() & 0x7fffffff
	switch r.IntN(10) {
	case 0:
		return "keepalive", wire.Control(wire.CtrlKeepalive, 0, 0, ts, dst, nil)
	case 1: // full ACK: last ack seq, rtt, rtt var, buffer, rate, bandwidth, rcv rate
		body := wire.U32s(seq, r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32())
		body = body[:[]int{4, 16, 28, 28, 20}[r.IntN(5)]]
		return "ack", wire.Control(wire.CtrlACK, 0, r.Uint32(), ts, dst, body)
	case 2: // NAK loss list: single and range entries, sometimes inverted or endless
		var ws []uint32
		for range r.IntN(20) {
			if r.IntN(2) == 0 {
				a := r.Uint32() & 0x7fffffff
				b := a + uint32(r.IntN(100))
				if r.IntN(4) == 0 {
					b = a - uint32(1+r.IntN(100))
				}
				ws = append(ws, a|0x80000000, b&0x7fffffff)
			} else {
				ws = append(ws, r.Uint32()&0x7fffffff)
			}
		}
		if r.IntN(5) == 0 {
			ws = append(ws, r.Uint32()|0x80000000) // a range start with no end
		}
		return "nak", wire.Control(wire.CtrlNAK, 0, 0, ts, dst, wire.U32s(ws...))
	case 3:
		return "ackack", wire.Control(wire.CtrlACKACK, 0, r.Uint32(), ts, dst, nil)
	case 4:
		return "shutdown", wire.Control(wire.CtrlShutdown, 0, 0, ts, dst, nil)
	case 5: // drop request: message number, first and last sequence
		return "dropreq", wire.Control(wire.CtrlDropReq, 0, r.Uint32(), ts, dst, wire.U32s(seq, seq+uint32(r.IntN(1<<20))-uint32(r.IntN(100))))
	case 6:
		return "congestion warning", wire.Control(wire.CtrlCongestion, 0, 0, ts, dst, nil)
	case 7:
		return "peer error", wire.Control(wire.CtrlPeerError, 0, r.Uint32(), ts, dst, nil)
	case 8: // user-defined: the subtypes libsrt uses for HSREQ/KMREQ after the handshake (1..4)
		sub := uint16(r.IntN(6))
		var body []byte
		switch sub {
		case 1, 2:
			body = wire.HSReq(wire.SRTVersion, r.Uint32(), uint16(r.Uint32()), uint16(r.Uint32()))
		case 3, 4:
			body = wire.DefaultKM().Bytes()
		}
		return fmt.Sprintf("user control %d", sub), wire.Control(wire.CtrlUser, sub, 0, ts, dst, body)
	default: // a type that does not exist
		typ := uint16(9 + r.IntN(0x7ff0))
		b := wire.Control(typ, uint16(r.Uint32()), r.Uint32(), ts, dst, wire.RandBytes(r, r.IntN(64)))
		binary.BigEndian.PutUint16(b[0:], 0x8000|typ)
		return fmt.Sprintf("control type %#x", typ), b
	}
}
