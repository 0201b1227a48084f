package hostile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/test/hostile/wire"
)

// ServerMode is how a hostile SRT server answers a caller.
type ServerMode struct {
	Name string
	// Induction answers the caller's induction request (nil: a valid
	// induction answer).
	Induction func(s *SRTServer, req wire.Handshake, dst uint32) []byte
	// Conclusion answers the caller's conclusion (nil: a valid conclusion
	// answer).
	Conclusion func(s *SRTServer, req wire.Handshake, dst uint32) []byte
	// After, when set, runs after the conclusion answer: it may send
	// anything to the caller through send.
	After func(s *SRTServer, dst uint32, send func([]byte))
}

// SRTServer is a UDP server that speaks just enough SRT to get a caller
// to its conclusion and then answers as its mode says.
type SRTServer struct {
	Mode ServerMode
	Seed uint64

	Inductions  atomic.Int64 // induction requests received
	Conclusions atomic.Int64 // conclusions received

	conn   *net.UDPConn
	socket uint32
	cookie uint32
	n      atomic.Uint64 // answers built, the mutator's case index
	wg     sync.WaitGroup
	stop   chan struct{}
	once   sync.Once
}

// NewSRTServer listens on 127.0.0.1:0.
func NewSRTServer(mode ServerMode, seed uint64) (*SRTServer, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("hostile srt server: %w", err)
	}
	s := &SRTServer{Mode: mode, Seed: seed, conn: conn, socket: 0x0badc0de, cookie: 0x5eed1234, stop: make(chan struct{})}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr is the server's host:port.
func (s *SRTServer) Addr() string { return s.conn.LocalAddr().String() }

// Close stops the server and waits for its goroutines.
func (s *SRTServer) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.conn.Close()
		s.wg.Wait()
	})
}

func (s *SRTServer) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		hs, ok := wire.IsHandshake(buf[:n])
		if !ok {
			continue // the caller's keepalives, ACKs, shutdowns
		}
		send := func(p []byte) {
			if len(p) > 0 {
				s.conn.WriteToUDPAddrPort(p, from)
			}
		}
		switch hs.Type {
		case wire.HSInduction:
			s.Inductions.Add(1)
			f := s.Mode.Induction
			if f == nil {
				f = (*SRTServer).validInduction
			}
			send(f(s, hs, hs.SocketID))
		case wire.HSConclusion:
			s.Conclusions.Add(1)
			f := s.Mode.Conclusion
			if f == nil {
				f = (*SRTServer).validConclusion
			}
			send(f(s, hs, hs.SocketID))
			if s.Mode.After != nil {
				dst := hs.SocketID
				s.wg.Go(func() { s.Mode.After(s, dst, send) })
			}
		}
	}
}

// Rand is the server's next deterministic random source.
func (s *SRTServer) Rand() *rand.Rand { return wire.NewRand(s.Seed, s.n.Add(1)) }

func (s *SRTServer) inductionHS(req wire.Handshake) wire.Handshake {
	return wire.Handshake{Version: 5, ExtField: wire.InductionMagic, ISN: req.ISN, MTU: 1500, FlowWindow: 8192,
		Type: wire.HSInduction, SocketID: s.socket, Cookie: s.cookie, PeerIP: netip.MustParseAddr("127.0.0.1")}
}

func (s *SRTServer) validInduction(req wire.Handshake, dst uint32) []byte {
	return wire.HandshakePacket(dst, s.inductionHS(req))
}

func (s *SRTServer) conclusionHS(req wire.Handshake) wire.Handshake {
	return wire.Handshake{Version: 5, ExtField: wire.FlagHSReq, ISN: req.ISN, MTU: 1500, FlowWindow: 8192,
		Type: wire.HSConclusion, SocketID: s.socket, Cookie: s.cookie, PeerIP: netip.MustParseAddr("127.0.0.1")}
}

// HSRsp is a valid HSRSP extension (live mode, 120 ms).
func HSRsp() wire.Ext {
	return wire.E(wire.ExtHSRsp, wire.HSReq(wire.SRTVersion, wire.DefaultHSFlags, 120, 120))
}

func (s *SRTServer) validConclusion(req wire.Handshake, dst uint32) []byte {
	return wire.HandshakePacket(dst, s.conclusionHS(req), HSRsp())
}

// Garbage sends n mutated data and control packets to the caller's
// socket, one every millisecond or so.
func Garbage(n int) func(s *SRTServer, dst uint32, send func([]byte)) {
	return func(s *SRTServer, dst uint32, send func([]byte)) {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var peer Peer
		peer.Socket.Store(dst)
		peer.Cookie.Store(s.cookie)
		for i := range n {
			r := wire.NewRand(s.Seed, uint64(1_000_000+i))
			var p []byte
			if r.IntN(2) == 0 {
				_, p = controlCase(r, dst)
			} else {
				_, p = SRTCase(r, &peer, s.socket, nil)
			}
			if r.IntN(2) == 0 {
				p = wire.Mutate(r, p, 4)
			}
			send(p)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}
}

// Silent never answers: a caller's start hangs in its handshake.
var Silent = ServerMode{Name: "silent", Induction: func(*SRTServer, wire.Handshake, uint32) []byte { return nil }}

// WildData sends n data packets with wild sequence and message numbers
// (what breaks libsrt 1.5.1's FEC receiver) to the caller's socket.
func WildData(n int) func(s *SRTServer, dst uint32, send func([]byte)) {
	return func(s *SRTServer, dst uint32, send func([]byte)) {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for i := range n {
			r := wire.NewRand(s.Seed, uint64(2_000_000+i))
			h := wire.DataHeader{Seq: r.Uint32(), Position: 3, MsgNo: r.Uint32(), Timestamp: r.Uint32(), DstSocket: dst}
			if r.IntN(4) == 0 {
				h.MsgNo = 0
			}
			send(wire.Data(h, wire.RandBytes(r, 1+r.IntN(1400))))
			if i%10 == 0 {
				select {
				case <-s.stop:
					return
				case <-t.C:
				}
			}
		}
	}
}

// ServerModes are the hostile servers every SRT caller path is pointed at.
var ServerModes = []ServerMode{
	{Name: "conclusion cut one byte into the extensions", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		return append(wire.HandshakePacket(dst, s.conclusionHS(req)), 0)
	}},
	{Name: "truncated HSRSP", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		p := wire.HandshakePacket(dst, s.conclusionHS(req), HSRsp())
		return p[:len(p)-7]
	}},
	{Name: "extension length 0xffff", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		return wire.HandshakePacket(dst, s.conclusionHS(req), wire.Ext{Type: wire.ExtHSRsp,
			Content: wire.HSReq(wire.SRTVersion, wire.DefaultHSFlags, 120, 120), Words: 0xffff})
	}},
	{Name: "zero-length HSRSP", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		return wire.HandshakePacket(dst, s.conclusionHS(req), wire.Ext{Type: wire.ExtHSRsp, Words: 0})
	}},
	{Name: "KMRSP with bad lengths", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		km := wire.DefaultKM()
		km.RawSLenW, km.RawKLenW = 255, 255
		h := s.conclusionHS(req)
		h.ExtField |= wire.FlagKMReq
		return wire.HandshakePacket(dst, h, HSRsp(), wire.E(wire.ExtKMRsp, km.Bytes()[:20]))
	}},
	{Name: "KMRSP one word", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		h := s.conclusionHS(req)
		h.ExtField |= wire.FlagKMReq
		return wire.HandshakePacket(dst, h, HSRsp(), wire.E(wire.ExtKMRsp, wire.U32s(4)))
	}},
	{Name: "induction answer version 6", Induction: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		h := s.inductionHS(req)
		h.Version = 6
		return wire.HandshakePacket(dst, h)
	}},
	{Name: "induction answer truncated", Induction: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		return s.validInduction(req, dst)[:16+20]
	}},
	{Name: "conclusion version 4 with garbage", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		h := s.conclusionHS(req)
		h.Version = 4
		return append(wire.HandshakePacket(dst, h), wire.RandBytes(s.Rand(), 37)...)
	}},
	{Name: "garbage after a valid conclusion", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		return append(s.validConclusion(req, dst), wire.RandBytes(s.Rand(), 1+int(s.n.Load()%61))...)
	}},
	{Name: "every extension type, lying lengths", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		r := s.Rand()
		_, exts := conclusionExts(r, "read:x")
		exts = append([]wire.Ext{HSRsp()}, exts...)
		return wire.HandshakePacket(dst, s.conclusionHS(req), exts...)
	}},
	{Name: "reject code then garbage", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		h := s.conclusionHS(req)
		h.Type = 1000 + uint32(s.n.Add(1)%20)
		return append(wire.HandshakePacket(dst, h), wire.RandBytes(s.Rand(), 9)...)
	}, After: Garbage(200)},
	{Name: "valid handshake then garbage packets", After: Garbage(3000)},
	{Name: "FEC filter in the answer, then wild data", Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		h := s.conclusionHS(req)
		h.ExtField |= wire.FlagConfig
		return wire.HandshakePacket(dst, h, HSRsp(), wire.E(wire.ExtFilter, wire.String4("fec,cols:10,rows:5")))
	}, After: WildData(3000)},
	{Name: "mutated answers", Induction: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		r := s.Rand()
		if r.IntN(2) == 0 {
			return s.validInduction(req, dst)
		}
		return wire.Mutate(r, s.validInduction(req, dst), 3)
	}, Conclusion: func(s *SRTServer, req wire.Handshake, dst uint32) []byte {
		r := s.Rand()
		return wire.Mutate(r, s.validConclusion(req, dst), 6)
	}, After: Garbage(300)},
}
