package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync/atomic"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/mpegts"
)

// pullSRT reads MPEG-TS from an SRT listener (streamid read:app/name) and
// publishes both lanes, as the SRT listener does for a publisher.
func (p *Puller) pullSRT(ctx context.Context, t Target, u *url.URL, sk *sink) error {
	cfg, addr, err := srtConfig(t, u, "read")
	if err != nil {
		return err
	}
	conn, err := gosrt.Dial("srt", addr, cfg)
	if err != nil {
		return srtDialError(t, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var idle atomic.Bool
	watchdog := time.AfterFunc(p.cfg.ReadTimeout, func() {
		idle.Store(true)
		conn.Close()
	})
	defer watchdog.Stop()
	stopStats := statsLoop(&p.tr, func() *SRTStats { return srtStats(conn, false, cfg.Passphrase != "", cfg.ReceiverLatency) })
	defer stopStats()

	dm := mpegts.NewDemuxer()
	var werr error
	emit := func(pk *media.Packet) {
		if werr == nil {
			werr = sk.write(pk)
		}
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case idle.Load():
				return fmt.Errorf("srt %s: %w for %s", Redact(t.URL), ErrIdle, p.cfg.ReadTimeout)
			case errors.Is(err, io.EOF):
				_ = dm.Flush(emit)
				return fmt.Errorf("srt %s: %w (peer idle timeout %s)", Redact(t.URL), errPeerGone, cfg.PeerIdleTimeout)
			}
			return fmt.Errorf("srt %s: read: %w", Redact(t.URL), err)
		}
		watchdog.Reset(p.cfg.ReadTimeout)
		p.tr.addBytes(n)
		if err := dm.Feed(buf[:n], emit); err != nil {
			return fmt.Errorf("srt %s: bad MPEG-TS from the source: %w", Redact(t.URL), err)
		}
		if werr != nil {
			return werr
		}
	}
}
