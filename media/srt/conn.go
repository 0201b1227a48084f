package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Errors that close a connection.
var (
	ErrIdle       = errors.New("publisher sent no media")
	ErrStalled    = errors.New("reader's SRT send queue stayed full")
	ErrOverBitate = errors.New("publisher exceeded the listener's max_bitrate")
)

// session is one accepted SRT connection.
type session struct {
	s         *Server
	conn      *libsrt.Conn
	key       string
	role      string
	remote    string
	since     time.Time
	encrypted bool
	keyLen    int
	rcvBuf    int64 // its receive buffer, reserved in the budget
	// freeing: a same-host handshake that replaces this publisher
	// counted its buffer as available (Server.decide); one at a time
	freeing atomic.Bool
	// linger: close so that the peer gets what was sent (the stream
	// ended); otherwise the connection is dropped at once.
	linger bool

	pub    *media.Publisher
	reader *media.Reader
	divert func(*libsrt.Conn) error // Config.Divert took the connection
	cancel context.CancelFunc
	once   sync.Once
}

func (ss *session) release() {
	ss.once.Do(func() {
		if ss.pub != nil {
			ss.pub.Close()
		}
		if ss.reader != nil {
			ss.reader.Close()
		}
		if ss.cancel != nil {
			ss.cancel()
		}
	})
}

// publish reads TS from the connection into both lanes of the stream.
func (ss *session) publish() error {
	cfg := ss.s.conf()
	dm := mpegts.NewDemuxer()
	dm.SetWantFLV(ss.pub.WantsFLV)
	var werr error
	emit := func(p *unit.Packet) {
		if werr == nil {
			werr = ss.pub.Write(p)
		}
	}
	buf := make([]byte, 1500)
	var winStart time.Time
	var winBytes int64
	for {
		ss.conn.SetReadDeadline(time.Now().Add(cfg.ReadTimeout))
		n, err := ss.conn.Read(buf)
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				return fmt.Errorf("%w for %s", ErrIdle, cfg.ReadTimeout)
			case ss.s.closed.Load() || errors.Is(err, io.EOF) || errors.Is(err, libsrt.ErrClosed):
				_ = dm.Flush(emit)
				return nil // the peer or the server closed
			}
			return fmt.Errorf("read: %w", err)
		}
		if cfg.MaxBitrate > 0 {
			now := time.Now()
			if winStart.IsZero() || now.Sub(winStart) >= 4*time.Second {
				winStart, winBytes = now, 0
			}
			winBytes += int64(n)
			if winBytes*8 > cfg.MaxBitrate*4 {
				return fmt.Errorf("%w (%d bit/s)", ErrOverBitate, cfg.MaxBitrate)
			}
		}
		if err := dm.Feed(buf[:n], emit); err != nil {
			return fmt.Errorf("bad input: %w", err)
		}
		ss.pub.AddContinuityErrors(dm.NewCCErrors())
		if werr != nil {
			return fmt.Errorf("hub: %w", werr)
		}
	}
}

// read sends the stream's TS lane to the connection in 1316-byte messages.
func (ss *session) read() error {
	cfg := ss.s.conf()
	ctx, cancel := context.WithCancel(ss.s.ctx)
	defer cancel()
	go func() {
		select {
		case <-ss.conn.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	send := func(b []byte) error {
		return WriteMessage(ss.conn, b, cfg.WriteTimeout)
	}
	out := make([]byte, 0, MessageSize)
	pkts := make([]*unit.Packet, 0, 64)
	for {
		var err error
		pkts, err = ss.reader.Next(ctx, pkts)
		if werr := WriteBatch(ss.reader, pkts, out, send); werr != nil {
			return ss.readEnd(werr)
		}
		if err != nil {
			return ss.readEnd(err)
		}
	}
}

func (ss *session) readEnd(err error) error {
	if closed(ss.conn.Done()) {
		return nil // the reader left
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, libsrt.ErrClosed) {
		return nil
	}
	if errors.Is(err, media.ErrStreamEnded) {
		ss.linger = true // the reader gets the end of the stream
		return nil
	}
	return err
}
