package rtmp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

func (c *conn) play(ctx context.Context, cmd Command) error {
	key, query, err := c.streamKey(cmd)
	if err != nil {
		c.onStatus("error", "NetStream.Play.BadName", err.Error())
		return err
	}
	c.log = c.connLog.With("stream", key, "role", "player")
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

	if err := c.mc.Write(UserControl(EventStreamBegin, unit.RTMPMessageStreamID)); err != nil {
		return err
	}
	if err := c.onStatus("status", "NetStream.Play.Reset", "Playing and resetting "+key+"."); err != nil {
		return err
	}
	if err := c.onStatus("status", "NetStream.Play.Start", "Started playing "+key+"."); err != nil {
		return err
	}
	sample, _ := amf0.Data{"|RtmpSampleAccess", true, true}.Marshal()
	if err := c.mc.Write(&rawmessage.Message{ChunkStreamID: csidStatus, Type: msgDataAMF0, MessageStreamID: unit.RTMPMessageStreamID, Body: sample}); err != nil {
		return err
	}
	c.log.Info("playing")

	// The player only sends acks, pings and deleteStream from now on.
	c.nc.SetDeadline(time.Time{})
	snd := media.Sender{Conn: c.nc, Wire: (*unit.Packet).AppendRTMP, HeaderScratch: unit.RTMPHeaderScratch, WriteTimeout: cfg.WriteTimeout, Lock: c.mc.Locker()}
	// The stream's fan-out writer sends the media; this goroutine reads
	// the player's messages until it leaves or the writer is done with
	// it (which cuts the read short), so a player costs no goroutine of
	// its own beside its connection's.
	if k := snd.Start(rd, func() { c.nc.SetReadDeadline(time.Unix(1, 0)) }); k != nil {
		c.readUntilStop()
		err = k.End()
	} else {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer cancel()
			c.readUntilStop()
		}()
		err = snd.Send(ctx, rd)
	}
	var werr *media.WriteError
	switch {
	case errors.As(err, &werr):
		if isTimeout(werr.Err) {
			return refuse("player blocked for %s: disconnected", cfg.WriteTimeout)
		}
		return werr.Err
	case errors.Is(err, media.ErrStreamEnded):
		c.mc.Write(UserControl(EventStreamEOF, unit.RTMPMessageStreamID))
		c.onStatus("status", "NetStream.Play.UnpublishNotify", key+" is now unpublished.")
		c.onStatus("status", "NetStream.Play.Stop", "Stopped playing "+key+".")
		c.log.Info("stream ended")
		return nil
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, media.ErrSlowReader):
		return refusal{fmt.Errorf("%w (skipped %d packets)", err, rd.Skipped())}
	default:
		return err
	}
}

// readUntilStop reads the player's messages until it sends deleteStream
// or closeStream, or a read fails.
func (c *conn) readUntilStop() {
	for {
		msg, err := c.readMessage()
		if err != nil {
			return
		}
		if cmd, ok, _ := DecodeCommand(msg); ok && (cmd.Name == "deleteStream" || cmd.Name == "closeStream") {
			return
		}
	}
}
