// Package rtmpsniff is a TCP proxy for tests that passes RTMP connections
// through untouched and records the header of every type-0 chunk each
// side sends. It parses the chunk stream by the spec (RTMP 1.0, 5.3),
// independently of the RTMP library relaymesh uses, so a test sees the
// bytes a peer such as GStreamer sees.
package rtmpsniff

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Header is a type-0 chunk header as it was on the wire.
type Header struct {
	FromClient bool
	CSID       uint32
	Type       uint8
	Length     uint32
	MSID       [4]byte // the message stream id field, as sent
}

// StreamID is the message stream id as the spec reads the field:
// little-endian.
func (h Header) StreamID() uint32 { return binary.LittleEndian.Uint32(h.MSID[:]) }

// Message types that travel on a message stream; protocol and user
// control messages (types 1 to 6) belong to the connection, stream 0.
const (
	TypeAudio   = 8
	TypeVideo   = 9
	TypeData    = 18 // AMF0
	TypeCommand = 20 // AMF0
)

// OnStream says whether h is an audio, video, data or command message.
func (h Header) OnStream() bool {
	switch h.Type {
	case TypeAudio, TypeVideo, TypeData, TypeCommand:
		return true
	}
	return false
}

// WrongStream says whether h's message stream id is not the one a single
// publish or play session uses: stream 1 for media and data, 0 or 1 for
// commands (connect and createStream go on 0).
func (h Header) WrongStream() bool {
	if h.Type == TypeCommand {
		return h.StreamID() > 1
	}
	return h.StreamID() != 1
}

// Proxy forwards connections on a loopback port to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	headers []Header
	errs    []error
	wg      sync.WaitGroup
	conns   map[net.Conn]struct{}
}

// Start listens on 127.0.0.1:0 and forwards every connection to target;
// it stops when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Headers returns the type-0 chunk headers seen so far, in order per
// direction.
func (p *Proxy) Headers() []Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Header(nil), p.headers...)
}

// Err returns the first chunk stream the proxy could not follow, if any.
func (p *Proxy) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil // a connection accepted meanwhile is closed by accept
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers both ends of a connection for close; false once the
// proxy is closing.
func (p *Proxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	p.conns[s] = struct{}{}
	return true
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			c.Close()
			s.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(s, c, true)
		go p.pipe(c, s, false)
	}
}

// pipe copies src to dst and parses what passes.
func (p *Proxy) pipe(dst, src net.Conn, fromClient bool) {
	defer p.wg.Done()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := p.parse(pr, fromClient)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.ErrClosedPipe) {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
		}
		io.Copy(io.Discard, pr)
	}()
	io.Copy(io.MultiWriter(dst, pw), src)
	pw.Close()
	dst.Close()
	src.Close()
	<-done
}

type chunkStream struct {
	length  uint32
	typ     uint8
	left    uint32 // body bytes of the current message still to come
	ext     bool   // the current message has an extended timestamp
	started bool
}

// parse follows one direction of a connection: the handshake (C0/S0 and
// two 1536-byte blocks), then chunks, tracking Set Chunk Size.
func (p *Proxy) parse(r io.Reader, fromClient bool) error {
	if _, err := io.CopyN(io.Discard, r, 1+2*1536); err != nil {
		return err
	}
	chunkSize := uint32(128)
	streams := map[uint32]*chunkStream{}
	var b [16]byte
	for {
		if _, err := io.ReadFull(r, b[:1]); err != nil {
			return err
		}
		fmtType := b[0] >> 6
		csid := uint32(b[0] & 0x3f)
		switch csid {
		case 0:
			if _, err := io.ReadFull(r, b[:1]); err != nil {
				return err
			}
			csid = 64 + uint32(b[0])
		case 1:
			if _, err := io.ReadFull(r, b[:2]); err != nil {
				return err
			}
			csid = 64 + uint32(b[0]) + uint32(b[1])<<8
		}
		cs := streams[csid]
		if cs == nil {
			cs = &chunkStream{}
			streams[csid] = cs
		}
		hl := [4]int{11, 7, 3, 0}[fmtType]
		if _, err := io.ReadFull(r, b[:hl]); err != nil {
			return err
		}
		if fmtType < 3 {
			cs.ext = uint32(b[0])<<16|uint32(b[1])<<8|uint32(b[2]) == 0xFFFFFF
		}
		if fmtType <= 1 {
			cs.length = uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
			cs.typ = b[6]
		}
		if fmtType == 0 {
			h := Header{FromClient: fromClient, CSID: csid, Type: cs.typ, Length: cs.length}
			copy(h.MSID[:], b[7:11])
			p.mu.Lock()
			p.headers = append(p.headers, h)
			p.mu.Unlock()
		}
		if !cs.started && fmtType == 3 {
			return errors.New("rtmpsniff: type-3 chunk on a chunk stream that never started")
		}
		cs.started = true
		if cs.ext {
			if _, err := io.ReadFull(r, b[:4]); err != nil {
				return err
			}
		}
		if cs.left == 0 {
			cs.left = cs.length
		}
		n := min(cs.left, chunkSize)
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		if cs.typ == 1 && cs.left == cs.length && n >= 4 { // Set Chunk Size
			chunkSize = binary.BigEndian.Uint32(body) & 0x7fffffff
		}
		cs.left -= n
	}
}
