package srt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
	"github.com/relaymesh/relaymesh/media/unit"
)

// WriteMessage writes b to conn as one message, waiting while libsrt's
// send buffer is full. It fails with io.EOF when the connection is gone
// and with an error wrapping ErrStalled when the buffer stayed full for
// stall.
func WriteMessage(conn *libsrt.Conn, b []byte, stall time.Duration) error {
	conn.SetWriteDeadline(time.Now().Add(stall))
	_, err := conn.Write(b)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w for %s", ErrStalled, stall)
	case errors.Is(err, io.EOF), errors.Is(err, libsrt.ErrClosed):
		return io.EOF
	}
	return fmt.Errorf("srt write: %w", err)
}

// WriteBatch sends the payloads of pkts, which r returned, with send in
// MessageSize messages, using buf (capacity MessageSize) as scratch, and
// counts them in r.BytesOut. A partial message goes out at the end of
// the batch.
func WriteBatch(r *media.Reader, pkts []*unit.Packet, buf []byte, send func([]byte) error) error {
	out := buf[:0]
	for _, pk := range pkts {
		for b := pk.Payload; len(b) > 0; {
			k := min(MessageSize-len(out), len(b))
			out = append(out, b[:k]...)
			b = b[k:]
			if len(out) == MessageSize {
				if err := send(out); err != nil {
					return err
				}
				out = out[:0]
			}
		}
		r.BytesOut.Add(uint64(len(pk.Payload)))
	}
	if len(out) > 0 {
		return send(out)
	}
	return nil
}
