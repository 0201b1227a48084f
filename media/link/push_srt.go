package link

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/unit"
)

// pushSRT sends the TS lane to an SRT listener in srt.MessageSize messages.
func (p *Pusher) pushSRT(ctx context.Context, t Target, u *url.URL, r *media.Reader) (time.Duration, error) {
	c, err := dialSRTSender(ctx, t, u, &p.tr, p.log)
	if err != nil {
		return 0, err
	}
	defer c.close()
	stopClose := context.AfterFunc(ctx, func() { c.conn.CloseNow() })
	defer stopClose()
	start := time.Now()
	since := func() time.Duration { return time.Since(start) }

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.conn.Done():
			cancel()
		case <-sctx.Done():
		}
	}()
	send := func(b []byte) error { return c.send(ctx, b) }
	out := make([]byte, 0, srt.MessageSize) // WriteBatch's scratch
	pkts := make([]*unit.Packet, 0, 64)
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
				c.linger = true
				return since(), errStreamGone
			case errors.Is(nerr, context.Canceled):
				return since(), c.gone()
			}
			return since(), fmt.Errorf("hub reader: %w", nerr)
		}
	}
}
