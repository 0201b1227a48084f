package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
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
	conn      gosrt.Conn
	key       string
	role      string
	remote    string
	since     time.Time
	encrypted bool

	pub    *media.Publisher
	reader *media.Reader
	// waitc, when not nil, delivers the reader of a stream that was not
	// live when the connection was accepted (Config.PlayWait).
	waitc  <-chan subResult
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
		if ss.waitc != nil {
			// the subscription ends with the cancel above
			if res := <-ss.waitc; res.r != nil {
				res.r.Close()
			}
			ss.waitc = nil
		}
	})
}

// publish reads TS from the connection into both lanes of the stream.
func (ss *session) publish() error {
	cfg := &ss.s.cfg
	dm := mpegts.NewDemuxer()
	var idle sync.Mutex
	idleFired := false
	watchdog := time.AfterFunc(cfg.ReadTimeout, func() {
		idle.Lock()
		idleFired = true
		idle.Unlock()
		ss.conn.Close()
	})
	defer watchdog.Stop()
	var werr error
	emit := func(p *media.Packet) {
		if werr == nil {
			werr = ss.pub.Write(p)
		}
	}
	buf := make([]byte, 1500)
	var winStart time.Time
	var winBytes int64
	for {
		n, err := ss.conn.Read(buf)
		if err != nil {
			idle.Lock()
			fired := idleFired
			idle.Unlock()
			if fired {
				return fmt.Errorf("%w for %s", ErrIdle, cfg.ReadTimeout)
			}
			if ss.s.closed.Load() || errors.Is(err, io.EOF) {
				_ = dm.Flush(emit)
				return nil // the peer or the server closed
			}
			return fmt.Errorf("read: %w", err)
		}
		watchdog.Reset(cfg.ReadTimeout)
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
		if werr != nil {
			return fmt.Errorf("hub: %w", werr)
		}
	}
}

// read sends the stream's TS lane to the connection in 1316-byte messages.
func (ss *session) read() error {
	cfg := &ss.s.cfg
	ctx, cancel := context.WithCancel(ss.s.ctx)
	defer cancel()
	peerGone := WatchClosed(ss.conn, cancel)
	defer func() {
		ss.conn.Close()
		<-peerGone
	}()
	if ss.reader == nil {
		// Accepted while the stream was not live: wait for the rest of
		// PlayWait, sending nothing meanwhile (keepalives keep the link).
		select {
		case res := <-ss.waitc:
			ss.waitc = nil
			if res.err != nil {
				return fmt.Errorf("read %s: %w", ss.key, res.err)
			}
			ss.reader = res.r
		case <-peerGone:
			return nil
		}
	}
	send := func(b []byte) error {
		return WriteMessage(ctx, ss.conn, b, cfg.WriteTimeout, peerGone)
	}
	out := make([]byte, 0, MessageSize)
	pkts := make([]*media.Packet, 0, 64)
	for {
		var err error
		pkts, err = ss.reader.Next(ctx, pkts)
		if werr := WriteBatch(ss.reader, pkts, out, send); werr != nil {
			return ss.readEnd(werr, peerGone)
		}
		if err != nil {
			return ss.readEnd(err, peerGone)
		}
	}
}

func (ss *session) readEnd(err error, peerGone <-chan struct{}) error {
	select {
	case <-peerGone:
		return nil // the reader left
	default:
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	if errors.Is(err, media.ErrStreamEnded) {
		Drain(ss.conn, peerGone, ss.s.cfg.Latency)
		return nil
	}
	return err
}
