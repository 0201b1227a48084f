package rtmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/relaymesh/relaymesh/media"
)

func (c *conn) play(ctx context.Context, cmd command) error {
	key, query, err := c.streamKey(cmd)
	if err != nil {
		c.onStatus("error", "NetStream.Play.BadName", err.Error())
		return err
	}
	c.log = c.log.With("stream", key, "role", "player")
	if err := c.authorize("play", key, query); err != nil {
		c.onStatus("error", "NetStream.Play.Unauthorized", err.Error())
		return err
	}
	cfg := c.srv.cfg.Load()
	c.nc.SetDeadline(time.Now().Add(cfg.PlayWait + cfg.HandshakeTimeout))
	rd, err := c.srv.hub.Subscribe(ctx, key, media.SubscribeOptions{
		Format:   media.FormatFLV,
		Info:     media.ReaderInfo{Protocol: "rtmp", Remote: c.nc.RemoteAddr().String()},
		Wait:     cfg.PlayWait,
		Coalesce: cfg.WriteCoalesce,
	})
	if err != nil {
		c.onStatus("error", "NetStream.Play.StreamNotFound", err.Error())
		return refusal{err}
	}
	defer rd.Close()

	if err := c.writeRaw(csidControl, msgUserControl, 0, []byte{0, 0, 0, 0, 0, media.RTMPMessageStreamID}); err != nil {
		return err
	}
	if err := c.onStatus("status", "NetStream.Play.Reset", "Playing and resetting "+key+"."); err != nil {
		return err
	}
	if err := c.onStatus("status", "NetStream.Play.Start", "Started playing "+key+"."); err != nil {
		return err
	}
	sample, _ := amf0.Data{"|RtmpSampleAccess", true, true}.Marshal()
	if err := c.writeRaw(csidStatus, msgDataAMF0, media.RTMPMessageStreamID, sample); err != nil {
		return err
	}
	c.log.Info("playing")

	// The player only sends acks, pings and deleteStream from now on.
	c.nc.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer cancel()
		for {
			msg, err := c.readMessage()
			if err != nil {
				return
			}
			if msg.Type == msgCommandAMF0 || msg.Type == msgCommandAMF3 {
				if cmd, err := decodeCommand(msg); err == nil && (cmd.name == "deleteStream" || cmd.name == "closeStream") {
					return
				}
			}
		}
	}()

	buf := make([]*media.Packet, 0, 64)
	bufs := make(net.Buffers, 0, 64)
	var deadlineSet time.Time
	for {
		pkts, nerr := rd.Next(ctx, buf)
		if len(pkts) > 0 {
			bufs = bufs[:0]
			n := 0
			for _, p := range pkts {
				b := p.RTMPChunks()
				bufs = append(bufs, b)
				n += len(b)
			}
			c.wmu.Lock()
			// moving the deadline costs a timer update: do it once a
			// second, not per write (it still fires within 1 s of the limit)
			if now := time.Now(); now.Sub(deadlineSet) > time.Second {
				c.nc.SetWriteDeadline(now.Add(cfg.WriteTimeout))
				deadlineSet = now
			}
			wb := bufs
			_, werr := wb.WriteTo(c.nc)
			c.wmu.Unlock()
			rd.BytesOut.Add(uint64(n))
			if werr != nil {
				if isTimeout(werr) {
					return refuse("player blocked for %s: disconnected", cfg.WriteTimeout)
				}
				return werr
			}
		}
		switch {
		case nerr == nil:
		case errors.Is(nerr, media.ErrStreamEnded):
			c.writeRaw(csidControl, msgUserControl, 0, []byte{0, 1, 0, 0, 0, media.RTMPMessageStreamID})
			c.onStatus("status", "NetStream.Play.UnpublishNotify", key+" is now unpublished.")
			c.onStatus("status", "NetStream.Play.Stop", "Stopped playing "+key+".")
			c.log.Info("stream ended")
			return nil
		case errors.Is(nerr, context.Canceled):
			return nil
		case errors.Is(nerr, media.ErrSlowReader):
			return refusal{fmt.Errorf("%w (skipped %d packets)", nerr, rd.Skipped())}
		default:
			return nerr
		}
	}
}
