package media

import (
	"context"
	"net"
	"sync"
	"time"
)

// Sender writes what a Reader hands out to one player's connection: each
// batch goes out as one writev of the packets' shared wire bytes, so no
// player copies a packet. The RTMP and HTTP-FLV players use it.
type Sender struct {
	Conn net.Conn
	// Wire gives a packet's bytes in the player's format, e.g.
	// (*Packet).FLVTag or (*Packet).RTMPChunks.
	Wire func(*Packet) []byte
	// WriteTimeout cuts a player that takes no bytes for this long. The
	// deadline is moved at most once a second (a timer update per write
	// costs), so it fires within 1 s after the limit.
	WriteTimeout time.Duration
	// Lock, if set, is held around each write: for connections others
	// write to as well (an RTMP session answers pings).
	Lock sync.Locker
}

// WriteError is a failed write to the player's connection.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write to player: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Send writes until the reader or a write fails and returns that error: a
// failed write as a *WriteError, an error of rd.Next as it is (after the
// packets that came with it are written). Bytes written are counted in
// rd.BytesOut.
func (s *Sender) Send(ctx context.Context, rd *Reader) error {
	buf := make([]*Packet, 0, 64)
	bufs := make(net.Buffers, 0, 64)
	var deadlineSet time.Time
	for {
		pkts, nerr := rd.Next(ctx, buf)
		if len(pkts) > 0 {
			bufs = bufs[:0]
			for _, p := range pkts {
				bufs = append(bufs, s.Wire(p))
			}
			if err := s.write(bufs, rd, &deadlineSet); err != nil {
				return &WriteError{err}
			}
		}
		if nerr != nil {
			return nerr
		}
	}
}

func (s *Sender) write(bufs net.Buffers, rd *Reader, deadlineSet *time.Time) error {
	if s.Lock != nil {
		s.Lock.Lock()
		defer s.Lock.Unlock()
	}
	if now := time.Now(); now.Sub(*deadlineSet) > time.Second {
		s.Conn.SetWriteDeadline(now.Add(s.WriteTimeout))
		*deadlineSet = now
	}
	n, err := bufs.WriteTo(s.Conn) // consumes its copy of the slice header only
	rd.BytesOut.Add(uint64(n))
	return err
}
