package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gosrt "github.com/datarhei/gosrt"
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
