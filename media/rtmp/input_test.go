package rtmp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (local, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	peer, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local = <-accepted
	if local == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { local.Close(); peer.Close() })
	return local, peer
}

// TestMessageConnTCP: on a TCP connection (the reader reads the socket
// itself, with pooled buffers) messages split anywhere across the peer's
// writes, small and larger than a read, arrive whole and in order, the
// acks count every byte, and the peer's hang-up and the read deadline end
// Read as on any connection.
func TestMessageConnTCP(t *testing.T) {
	local, peer := tcpPair(t)
	local.SetDeadline(time.Now().Add(10 * time.Second))
	mc := newMessageConn(bytecounter.NewReadWriter(local), local)
	if mc.r.br.(*input).raw == nil {
		t.Fatal("the reader does not read the TCP socket itself")
	}
	var bodies [][]byte
	s := newScript().msg(2, msgWindowAckSize, 0, 0, be32(50000)).chunkSize(4096)
	for i, n := range []int{1, 2, 100, 4095, 4096, 4097, 70000, 200000, 3} {
		b := bytes.Repeat([]byte{byte(i + 1)}, n)
		b[0] = 0x27
		bodies = append(bodies, b)
		s.msg(6, msgVideo, time.Duration(i)*time.Millisecond, 1, b)
	}
	wire := s.bytes()
	go func() {
		// pieces of every size, so that headers and bodies split
		for off, i := 0, 0; off < len(wire); i++ {
			n := min([]int{1, 5, 11, 700, 65536, 90001}[i%6], len(wire)-off)
			if _, err := peer.Write(wire[off : off+n]); err != nil {
				return
			}
			off += n
		}
	}()
	acks := make(chan uint32, 16)
	go func() {
		// the acks the reader sends back
		pm := NewMessageConn(bytecounter.NewReadWriter(peer))
		for {
			msg, err := pm.r.Read() // below MessageConn, which absorbs acks
			if err != nil {
				close(acks)
				return
			}
			if msg.Type == msgAck {
				acks <- be32v(msg.Body)
			}
		}
	}()
	for i, want := range bodies {
		msg, err := mc.Read()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(msg.Body, want) || msg.Timestamp != time.Duration(i)*time.Millisecond {
			t.Fatalf("message %d: %d bytes at %s, want %d at %dms", i, len(msg.Body), msg.Timestamp, len(want), i)
		}
	}
	local.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := mc.Read(); !isTimeout(err) {
		t.Fatalf("Read past the deadline: %v, want a timeout", err)
	}
	local.SetReadDeadline(time.Now().Add(10 * time.Second))
	peer.Close()
	if _, err := mc.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the peer hung up: %v, want EOF", err)
	}
	// one ack per window or per read bringing more (no repeats), the
	// last within a window and a read of the end
	var got []uint32
	for a := range acks {
		got = append(got, a)
	}
	for i, a := range got {
		if a > uint32(len(wire)) || (i > 0 && a <= got[i-1]) {
			t.Fatalf("acks %v of %d bytes sent: not increasing within what was sent", got, len(wire))
		}
	}
	if len(got) < 2 || got[len(got)-1] < uint32(len(wire)-50000-inputSize) {
		t.Fatalf("acks %v of %d bytes sent with a 50000-byte window: want them to reach the end", got, len(wire))
	}
}

func be32v(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
