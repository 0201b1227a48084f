package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
)

// errPeerGone: the SRT connection closed under us.
var errPeerGone = errors.New("srt peer closed the connection or went silent")

// pushSRT sends the TS lane to an SRT listener in srt.MessageSize messages.
func (p *Pusher) pushSRT(ctx context.Context, t Target, u *url.URL, r *media.Reader) (time.Duration, error) {
	cfg, addr, err := srtConfig(t, u, "publish")
	if err != nil {
		return 0, err
	}
	conn, err := dialSRT(ctx, t, addr, cfg)
	if err != nil {
		return 0, err
	}
	linger := false
	defer func() {
		if linger {
			conn.Close() // the listener gets the end of the stream
		} else {
			conn.CloseNow()
		}
	}()
	stopClose := context.AfterFunc(ctx, func() { conn.CloseNow() })
	defer stopClose()
	start := time.Now()
	since := func() time.Duration { return time.Since(start) }
	p.tr.set(StateRunning, "", nil)
	p.log.Info("push running", "target", Redact(t.URL), "encrypted", cfg.Passphrase != "")

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-conn.Done():
			cancel()
		case <-sctx.Done():
		}
	}()
	stopStats := statsLoop(&p.tr, func() *SRTStats { return srtStats(conn, true, cfg.Passphrase != "") })
	defer stopStats()

	gone := func() error {
		return fmt.Errorf("%w (peer idle timeout %s)", errPeerGone, cfg.PeerIdleTimeout)
	}
	send := func(b []byte) error {
		err := srt.WriteMessage(conn, b, writeStall)
		switch {
		case err == nil:
			p.tr.addBytes(len(b))
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			return gone()
		case errors.Is(err, srt.ErrStalled):
			return fmt.Errorf("srt send queue stayed full for %s", writeStall)
		}
		return err
	}
	out := make([]byte, 0, srt.MessageSize) // WriteBatch's scratch
	pkts := make([]*media.Packet, 0, 64)
	for {
		var nerr error
		pkts, nerr = r.Next(sctx, pkts)
		if err := srt.WriteBatch(r, pkts, out, send); err != nil {
			return since(), err
		}
		if nerr != nil {
			switch {
			case ctx.Err() != nil:
				return since(), nil
			case errors.Is(nerr, media.ErrStreamEnded):
				linger = true
				return since(), errStreamGone
			case errors.Is(nerr, context.Canceled):
				return since(), gone()
			}
			return since(), fmt.Errorf("hub reader: %w", nerr)
		}
	}
}
