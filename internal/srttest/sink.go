// Package srttest holds helpers for tests of SRT senders.
package srttest

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// Sink is an SRT listener on loopback that accepts one caller and records
// the number each message it sends starts with (4 bytes, big endian).
type Sink struct {
	Addr string
	mu   sync.Mutex
	got  []uint32
}

// NewSink starts a Sink; it closes when the test ends.
func NewSink(t testing.TB) *Sink {
	t.Helper()
	l, err := libsrt.Listen("127.0.0.1:0", libsrt.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &Sink{Addr: l.Addr().String()}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.CloseNow()
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil || n < 4 {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, binary.BigEndian.Uint32(buf))
			s.mu.Unlock()
		}
	}()
	return s
}

// Got returns the numbers received so far, in order.
func (s *Sink) Got() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint32(nil), s.got...)
}

// Last reports whether the last number received is n.
func (s *Sink) Last(n uint32) bool {
	got := s.Got()
	return len(got) > 0 && got[len(got)-1] == n
}

// Message is a message that starts with n, size bytes long (at least 4).
func Message(n uint32, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, n)
	return b
}
