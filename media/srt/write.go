package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/relaymesh/relaymesh/media"
)

// writeStep is how often WriteMessage retries a full send queue.
const writeStep = 5 * time.Millisecond

// WriteMessage writes b to conn as one message. gosrt returns io.EOF both
// when the connection is gone and when its send queue is full
// (backpressure), so WriteMessage waits and retries until the write goes
// through, gone is closed (io.EOF), ctx ends (its error), or the queue
// stayed full for stall (an error wrapping ErrStalled). gone is closed
// when the connection ended (a goroutine reading conn saw an error).
func WriteMessage(ctx context.Context, conn gosrt.Conn, b []byte, stall time.Duration, gone <-chan struct{}) error {
	var timer *time.Timer
	var waited time.Duration
	for {
		_, err := conn.Write(b)
		if err == nil {
			return nil
		}
		select {
		case <-gone:
			return io.EOF
		default:
		}
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("srt write: %w", err)
		}
		if waited >= stall {
			return fmt.Errorf("%w for %s", ErrStalled, stall)
		}
		if timer == nil {
			timer = time.NewTimer(writeStep)
			defer timer.Stop()
		} else {
			timer.Reset(writeStep)
		}
		select {
		case <-gone:
			return io.EOF
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		waited += writeStep
	}
}

// WatchClosed reads conn until it fails, then calls cancel and closes the
// returned channel. A peer that only receives sends nothing, so the read
// ends when the connection does (peer shutdown or PeerIdleTimeout). Close
// conn and then wait for the channel to end the goroutine.
func WatchClosed(conn gosrt.Conn, cancel func()) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		defer cancel()
		b := make([]byte, 1500)
		for {
			if _, err := conn.Read(b); err != nil {
				return
			}
		}
	}()
	return gone
}

// WriteBatch sends the payloads of pkts, which r returned, with send in
// MessageSize messages, using buf (capacity MessageSize) as scratch, and
// counts them in r.BytesOut. A partial message goes out at the end of
// the batch.
func WriteBatch(r *media.Reader, pkts []*media.Packet, buf []byte, send func([]byte) error) error {
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

// Drain waits, bounded by latency plus 2 s, until the peer acknowledged
// what was queued on conn (gosrt drops its send buffer on Close), or gone
// is closed.
func Drain(conn gosrt.Conn, gone <-chan struct{}, latency time.Duration) {
	deadline := time.Now().Add(latency + 2*time.Second)
	var st gosrt.Statistics
	empty := 0
	for time.Now().Before(deadline) && empty < 3 {
		conn.Stats(&st)
		if st.Instantaneous.PktSendBuf == 0 {
			empty++
		} else {
			empty = 0
		}
		select {
		case <-gone:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}
