package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
)

// pullSRT reads MPEG-TS from an SRT listener (streamid read:app/name) and
// publishes both lanes, as the SRT listener does for a publisher.
func (p *Puller) pullSRT(ctx context.Context, t Target, u *url.URL, sk *sink) error {
	cfg, addr, err := srtConfig(t, u, "read")
	if err != nil {
		return err
	}
	conn, err := dialSRT(ctx, t, addr, cfg, false)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	stop := context.AfterFunc(ctx, func() { conn.CloseNow() })
	defer stop()
	stopStats := statsLoop(&p.tr, func() *SRTStats { return srtStats(conn, false, cfg.Passphrase != "") })
	defer stopStats()

	dm := mpegts.NewDemuxer()
	dm.SetWantFLV(sk.wantsFLV)
	var werr error
	emit := func(pk *unit.Packet) {
		if werr == nil {
			werr = sk.write(pk)
		}
	}
	buf := make([]byte, 1500)
	for {
		conn.SetReadDeadline(time.Now().Add(p.cfg.ReadTimeout))
		n, err := conn.Read(buf)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, os.ErrDeadlineExceeded):
				return fmt.Errorf("srt %s: %w for %s", Redact(t.URL), ErrIdle, p.cfg.ReadTimeout)
			case conn.Cause() != nil:
				// the watch found the source dead: the demuxer's
				// last PES is cut where the source died (a complete
				// one went out when the next began); flushed, a
				// standby's take-over put that truncated frame
				// before its own copy of it (a decode error on the
				// third center of TestClusterDualPath kill -9)
				return fmt.Errorf("srt %s: %w", Redact(t.URL), peerGone(conn, cfg.PeerIdleTimeout))
			case errors.Is(err, io.EOF):
				_ = dm.Flush(emit)
				return fmt.Errorf("srt %s: %w", Redact(t.URL), peerGone(conn, cfg.PeerIdleTimeout))
			}
			return fmt.Errorf("srt %s: read: %w", Redact(t.URL), err)
		}
		p.tr.addBytes(n)
		if err := dm.Feed(buf[:n], emit); err != nil {
			return fmt.Errorf("srt %s: bad MPEG-TS from the source: %w", Redact(t.URL), err)
		}
		if sk.pub != nil {
			sk.pub.AddContinuityErrors(dm.NewCCErrors())
		}
		if werr != nil {
			return werr
		}
	}
}
