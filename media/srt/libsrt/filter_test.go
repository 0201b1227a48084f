package libsrt

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/relaymesh/relaymesh/test/hostile/wire"
)

// TestConclusionFilter runs the listener's socket filter program in
// x/net/bpf's VM against crafted datagrams (as the kernel sees them: a UDP
// header, then the SRT packet): every handshake libsrt 1.5.1's listener
// would read extensions from is dropped when it carries SRT_CMD_FILTER,
// whatever its request type, and what a plain caller sends passes.
func TestConclusionFilter(t *testing.T) {
	prog := conclusionProgram()
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	fec := wire.E(wire.ExtFilter, wire.String4("fec,cols:10,rows:5"))
	withType := func(p []byte, typ uint32) []byte {
		p = append([]byte(nil), p...)
		binary.BigEndian.PutUint32(p[srtHdr+hsTypeOff:], typ)
		return p
	}
	plain := wire.Conclusion(1, 2, lo, "publish:live/a")
	withFEC := wire.Conclusion(1, 2, lo, "publish:live/a", fec)
	var many []wire.Ext
	for range maxExtensions - 1 { // with the HSREQ: maxExtensions blocks
		many = append(many, wire.E(wire.ExtCongestion, wire.String4("live")))
	}
	cases := []struct {
		name string
		pkt  []byte
		pass bool
	}{
		{"data packet", wire.Data(wire.DataHeader{Seq: 1, Position: 3, MsgNo: 1}, make([]byte, 1316)), true},
		{"keepalive", wire.Control(wire.CtrlKeepalive, 0, 0, 0, 7, nil), true},
		{"induction", wire.Induction(1, lo), true},
		{"induction carrying a filter block (libsrt reads no extension of an induction)",
			withType(withFEC, wire.HSInduction), true},
		{"conclusion", plain, true},
		{"conclusion with 1 to 3 trailing bytes (libsrt reads whole words)", append(plain[:len(plain):len(plain)], 0, 0, 0), true},
		{"conclusion with maxExtensions blocks", wire.Conclusion(1, 2, lo, "", many...), true},
		{"conclusion with a FEC filter", withFEC, false},
		{"conclusion with the FEC filter first", wire.Conclusion(1, 2, lo, "", append([]wire.Ext{fec}, many[:3]...)...), false},
		{"agreement with a FEC filter", withType(withFEC, wire.HSAgreement), false},
		{"waveahand with a FEC filter", withType(withFEC, wire.HSWaveahand), false},
		{"done with a FEC filter", withType(withFEC, wire.HSDone), false},
		{"request type 5 with a FEC filter", withType(withFEC, 5), false},
		{"rejection 1004 with a FEC filter", withType(withFEC, 1004), false},
		{"agreement without a filter", withType(plain, wire.HSAgreement), true},
		{"conclusion with more than maxExtensions blocks", wire.Conclusion(1, 2, lo, "publish:live/a", many...), false},
		{"conclusion whose block runs past the end", wire.HandshakePacket(0,
			wire.Handshake{Version: 5, ExtField: wire.FlagConfig, Type: wire.HSConclusion},
			wire.Ext{Type: wire.ExtSID, Content: []byte("live"), Words: 50}), false},
	}
	for _, c := range cases {
		in := append(make([]byte, udpHdr), c.pkt...)
		n, err := vm.Run(in)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if pass := n != 0; pass != c.pass {
			t.Errorf("%s: passed %v, want %v", c.name, pass, c.pass)
		}
	}
}

// TestListenerDropsFilterRequests: a caller's handshake asking for a
// packet filter never reaches libsrt's listener, whatever request type it
// carries (libsrt takes all but an induction for a conclusion). Each
// round sends, from one UDP socket, an induction, then the FEC request
// (stream id "fec-...") and a plain conclusion ("plain-..."): libsrt
// handles a port's packets in order, so the first handshake Decide sees
// is the FEC one had it passed the socket filter, else the plain one.
func TestListenerDropsFilterRequests(t *testing.T) {
	seen := make(chan string, 16)
	l := listen(t, ListenConfig{Decide: func(r Request) Decision {
		select {
		case seen <- r.StreamID:
		default:
		}
		return Decision{Reject: RejXForbidden}
	}})
	lo := netip.MustParseAddr("127.0.0.1")
	fec := wire.E(wire.ExtFilter, wire.String4("fec,cols:10,rows:5"))
	for i, typ := range []struct {
		name string
		v    uint32
	}{{"conclusion", wire.HSConclusion}, {"agreement", wire.HSAgreement}, {"waveahand", wire.HSWaveahand}, {"done", wire.HSDone}} {
		c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ours := uint32(0x100 + i)
		var cookie uint32
		buf := make([]byte, 1500)
		for try := 0; cookie == 0; try++ {
			if try == 20 {
				t.Fatalf("%s: no induction answer", typ.name)
			}
			if _, err := c.Write(wire.Induction(ours, lo)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				if hs, ok := wire.IsHandshake(buf[:n]); ok && hs.Type == wire.HSInduction {
					cookie = hs.Cookie
				}
			}
		}
		req := wire.Conclusion(ours, cookie, lo, "fec-"+typ.name, fec)
		binary.BigEndian.PutUint32(req[srtHdr+hsTypeOff:], typ.v)
		for _, p := range [][]byte{req, wire.Conclusion(ours, cookie, lo, "plain-"+typ.name)} {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		sid := ""
		for !strings.HasSuffix(sid, "-"+typ.name) { // skip a late one of an earlier round
			select {
			case sid = <-seen:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: Decide never called", typ.name)
			}
		}
		if sid != "plain-"+typ.name {
			t.Errorf("%s: the listener's first handshake was %q: the FEC request got past the socket filter", typ.name, sid)
		}
	}
}
