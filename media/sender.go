package media

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// Sender writes what a Reader hands out to one player's connection. For
// a socket the lane's fan-out writer does it (Start; see fanout), with
// its framing scratch one per lane; for anything else, or a coalescing
// reader, a goroutine of the player's own (Send's loop) with a scratch of
// its own. Each batch goes out as one writev of the framing and the
// packets' shared payloads, so no player copies a packet and no packet is
// kept twice. The RTMP and HTTP-FLV players use it.
type Sender struct {
	Conn net.Conn
	// Wire appends a packet in the player's format to the iovecs, its
	// framing to the scratch: (*Packet).AppendFLV or (*Packet).AppendRTMP.
	Wire func(p *unit.Packet, bufs net.Buffers, hdr []byte) (net.Buffers, []byte)
	// HeaderScratch is the most scratch Wire appends per packet
	// (FLVHeaderScratch, RTMPHeaderScratch).
	HeaderScratch int
	// WriteTimeout cuts a player that takes no bytes for this long. The
	// fan-out writer never waits on a socket and sets it only for a
	// player whose socket is full; Send's loop moves the deadline only
	// when a tenth of it (at most 1 s) has passed since it last did (a
	// timer update per write costs), so a player that takes no bytes is
	// cut after 0.9-1x WriteTimeout, or WriteTimeout-1s for one above 10 s.
	WriteTimeout time.Duration
	// Lock, if set, is held around each write: for connections others
	// write to as well (an RTMP session answers pings).
	Lock sync.Locker
}

// A Sender takes up to sendBatch packets at a time and writes at most
// sendVecs iovecs per writev, more only for one packet that needs more
// (a keyframe of more than about 120 KiB in RTMP chunks): the iovec list
// is kept per player, so it stays small.
const (
	sendBatch = 64
	sendVecs  = 64
)

// maxVecs is the most iovecs AppendRTMP or AppendFLV makes of p.
func maxVecs(p *unit.Packet) int { return 3 + 2*(len(p.Payload)/unit.RTMPChunkSize) }

// renewEvery is how long a write deadline of timeout stands before a
// write moves it: a tenth of it, at most a second. (Once a second for any
// timeout cut a player on a write_timeout under 1 s that was taking every
// byte.)
func renewEvery(timeout time.Duration) time.Duration { return min(timeout/10, time.Second) }

// WriteError is a failed write to the player's connection.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "write to player: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Send writes until the reader or a write fails and returns that error
// (through the fan-out writer when Start takes the player): a
// failed write as a *WriteError, an error of rd.Next as it is (after the
// packets that came with it are written). Bytes written are counted in
// rd.BytesOut.
func (s *Sender) Send(ctx context.Context, rd *Reader) error {
	if k := s.Start(rd, nil); k != nil {
		select {
		case <-k.Done():
			return k.Err()
		case <-ctx.Done():
			k.Stop()
			return ctx.Err()
		}
	}
	buf := make([]*unit.Packet, 0, sendBatch)
	bufs := make(net.Buffers, 0, sendVecs) // grows only for a frame of many chunks
	hdr := make([]byte, 0, sendBatch*max(s.HeaderScratch, unit.RTMPHeaderScratch))
	var deadlineSet time.Time
	for {
		pkts, nerr := rd.Next(ctx, buf)
		bufs, hdr = bufs[:0], hdr[:0]
		for i, p := range pkts {
			// a batch that would outgrow the iovec list is split
			if len(bufs) > 0 && len(bufs)+maxVecs(p) > cap(bufs) {
				if err := s.write(bufs, rd, &deadlineSet); err != nil {
					return &WriteError{err}
				}
				bufs, hdr = bufs[:0], hdr[:0]
			}
			bufs, hdr = s.Wire(p, bufs, hdr)
			if i == len(pkts)-1 {
				if err := s.write(bufs, rd, &deadlineSet); err != nil {
					return &WriteError{err}
				}
				bufs = bufs[:0]
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
	if now := time.Now(); now.Sub(*deadlineSet) >= renewEvery(s.WriteTimeout) {
		s.Conn.SetWriteDeadline(now.Add(s.WriteTimeout))
		*deadlineSet = now
	}
	n, err := bufs.WriteTo(s.Conn) // consumes its copy of the slice header only
	rd.BytesOut.Add(uint64(n))
	return err
}
