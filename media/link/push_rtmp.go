package link

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

// pushRTMP publishes the FLV lane to an RTMP server. Media bodies are sent
// untouched as RTMP messages. Timestamps are rebased per connection so that
// each connection starts at 0 at its first keyframe, as a fresh encoder's
// would.
func (p *Pusher) pushRTMP(ctx context.Context, t Target, u *url.URL, r *media.Reader) (time.Duration, error) {
	c, err := dialRTMP(ctx, t, u, "FMLE/3.0 (compatible; relaymesh)")
	if err != nil {
		return 0, err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	if err := c.publish(); err != nil {
		return 0, fmt.Errorf("rtmp publish %s: %w", c.name, c.ctxErr(ctx, err))
	}
	c.nc.SetDeadline(time.Time{})
	start := time.Now()
	since := func() time.Duration { return time.Since(start) }
	p.tr.set(StateRunning, "", nil)
	p.log.Info("push running", "target", c.target)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rmu sync.Mutex
	var readErr error
	readDone := make(chan struct{})
	go func() {
		// the server sends acks, pings and perhaps an error onStatus
		defer close(readDone)
		defer cancel()
		for {
			msg, err := c.readMessage()
			if err == nil {
				var cmd rtmp.Command
				var ok bool
				cmd, ok, err = decodeCommand(msg)
				if err == nil && ok && cmd.Name == "onStatus" {
					err = statusError(cmd)
				}
				if err == nil {
					continue
				}
			}
			rmu.Lock()
			readErr = err
			rmu.Unlock()
			return
		}
	}()
	defer func() {
		c.close()
		<-readDone
	}()
	remoteErr := func() error {
		rmu.Lock()
		defer rmu.Unlock()
		if errors.Is(readErr, ErrRTMPRefused) {
			return fmt.Errorf("rtmp %s: %w", c.target, readErr)
		}
		return fmt.Errorf("rtmp %s: the server closed the connection (%v)", c.target, readErr)
	}

	base, started := int64(0), false
	msg := rawmessage.Message{MessageStreamID: c.streamID}
	pkts := make([]*unit.Packet, 0, 64)
	for {
		var nerr error
		pkts, nerr = r.Next(sctx, pkts)
		for _, pk := range pkts {
			if !started && !pk.Header && pk.Kind != unit.KindData {
				started, base = true, pk.Time
			}
			ts := pk.Time - base
			if !started || ts < 0 {
				if !pk.Header && pk.Kind != unit.KindData {
					continue // from before this connection's first keyframe
				}
				ts = 0
			}
			body := pk.Payload
			if pk.Kind == unit.KindData && unit.IsMetaData(body) {
				body = unit.WithSetDataFrame(body)
			}
			msg.ChunkStreamID = kindCSID(pk.Kind)
			msg.Type = uint8(pk.Kind)
			msg.Timestamp = time.Duration(uint32(ts)) * time.Millisecond
			msg.Body = body
			c.nc.SetWriteDeadline(time.Now().Add(writeStall))
			if err := c.mc.Write(&msg); err != nil {
				select {
				case <-readDone:
					return since(), remoteErr()
				default:
				}
				if ctx.Err() != nil {
					return since(), nil
				}
				return since(), fmt.Errorf("rtmp %s: write: %w", c.target, err)
			}
			p.tr.addBytes(len(body))
			r.BytesOut.Add(uint64(len(body)))
		}
		if nerr != nil {
			switch {
			case ctx.Err() != nil:
				return since(), nil
			case errors.Is(nerr, media.ErrStreamEnded):
				// tell the server the stream is over
				_ = c.send(csidCommand, 0, "FCUnpublish", c.nextTx(), nil, c.name)
				_ = c.send(csidStream, c.streamID, "deleteStream", c.nextTx(), nil, float64(c.streamID))
				return since(), errStreamGone
			case errors.Is(nerr, context.Canceled):
				return since(), remoteErr()
			}
			return since(), fmt.Errorf("hub reader: %w", nerr)
		}
	}
}

func (c *rtmpClient) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
