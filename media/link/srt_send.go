package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/media/srt"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// errPeerGone: the SRT connection closed under us.
var errPeerGone = errors.New("srt peer closed the connection or went silent")

// srtSender is an SRT caller connection a push writes messages on: a
// Pusher's TS lane (pushSRT) and a MessageSender's dual-path leg
// (sendSRT).
type srtSender struct {
	conn      *libsrt.Conn
	tr        *tracker
	idle      time.Duration // the peer idle timeout, for errors
	stopStats func()
	// linger makes close wait until the peer got what was sent
	linger bool
}

// dialSRTSender connects to the SRT listener of t to publish, marks tr
// running and starts its statistics; close ends both.
func dialSRTSender(ctx context.Context, t Target, u *url.URL, tr *tracker, log *slog.Logger) (*srtSender, error) {
	cfg, addr, err := srtConfig(t, u, "publish")
	if err != nil {
		return nil, err
	}
	conn, err := dialSRT(ctx, t, addr, cfg, true)
	if err != nil {
		return nil, err
	}
	encrypted := cfg.Passphrase != ""
	tr.set(StateRunning, "", nil)
	log.Info("push running", "target", Redact(t.URL), "encrypted", encrypted)
	return &srtSender{conn: conn, tr: tr, idle: cfg.PeerIdleTimeout,
		stopStats: statsLoop(tr, func() *SRTStats { return srtStats(conn, true, encrypted) })}, nil
}

// close records the statistics a last time and closes the connection,
// gracefully when linger is set.
func (s *srtSender) close() {
	s.stopStats()
	if s.linger {
		s.conn.Close()
	} else {
		s.conn.CloseNow()
	}
}

// gone is the error of a peer that closed the connection or went silent.
func (s *srtSender) gone() error { return peerGone(s.conn, s.idle) }

// send writes one message and counts its bytes. It returns nil as well
// when the write failed because ctx ended: the caller sees ctx.
func (s *srtSender) send(ctx context.Context, b []byte) error {
	err := srt.WriteMessage(s.conn, b, writeStall)
	switch {
	case err == nil:
		s.tr.addBytes(len(b))
		return nil
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, io.EOF), s.conn.Cause() != nil:
		return s.gone()
	case errors.Is(err, srt.ErrStalled):
		return fmt.Errorf("srt send queue stayed full for %s", writeStall)
	}
	return err
}
