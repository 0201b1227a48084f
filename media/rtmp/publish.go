package rtmp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// publish serves a publisher until it unpublishes (nil) or the
// connection fails or is refused (an error).
func (c *conn) publish(ctx context.Context, cmd Command) error {
	key, query, err := c.streamKey(cmd)
	if err != nil {
		c.onStatus("error", "NetStream.Publish.BadName", err.Error())
		return err
	}
	c.log = c.connLog.With("stream", key, "role", "publisher")
	if err := c.authorize("publish", key, query); err != nil {
		c.onStatus("error", "NetStream.Publish.Unauthorized", err.Error())
		return err
	}
	pub, err := c.srv.hub.Publish(key, media.PublisherInfo{
		Protocol: "rtmp", Remote: c.nc.RemoteAddr().String(), Native: media.FormatFLV,
	})
	if err != nil {
		c.onStatus("error", "NetStream.Publish.BadName", err.Error())
		return refusal{err}
	}
	defer pub.Close()
	// the packets of one read of the socket wake the players once
	pub.Batch()
	c.mc.SetBeforeRead(pub.Flush)
	defer func() {
		c.mc.SetBeforeRead(nil)
		pub.Flush()
	}()
	if err := c.onStatus("status", "NetStream.Publish.Start", key+" is now published."); err != nil {
		return err
	}
	c.log.Info("publishing")

	var (
		clock   unit.Unwrapper
		renewed time.Time
	)
	timeout := c.srv.cfg.Load().ReadTimeout
	for {
		// both ways: what the server writes meanwhile (acks, ping
		// responses) is no longer held to the command phase's deadline,
		// and a publisher that stops reading them is cut as one that
		// stops sending. Renewed every tenth of the timeout, not per
		// message (two runtime timers reset each time): a silent
		// publisher is cut after 0.9-1x the timeout.
		if now := time.Now(); now.Sub(renewed) >= timeout/10 {
			c.nc.SetDeadline(now.Add(timeout))
			renewed = now
		}
		msg, err := c.readMessage()
		if err != nil {
			if isTimeout(err) {
				return fmt.Errorf("no complete RTMP message from the publisher within %s", timeout)
			}
			return err
		}
		pkt, err := MessagePacket(msg, &clock)
		if err != nil {
			return refusal{err}
		}
		if pkt == nil {
			if cmd, ok, _ := DecodeCommand(msg); ok {
				switch cmd.Name {
				case "deleteStream", "closeStream", "FCUnpublish":
					c.log.Info("unpublished")
					return nil
				}
			}
			continue
		}
		if err := pub.Write(pkt); err != nil {
			if errors.Is(err, media.ErrBitrate) {
				return refusal{err}
			}
			return err
		}
	}
}

// MessagePacket turns an RTMP audio, video or data message into a hub
// packet (nil for other messages, or media with nothing to carry);
// malformed media is an error. clock extends the 32-bit timestamps.
func MessagePacket(msg *rawmessage.Message, clock *unit.Unwrapper) (*unit.Packet, error) {
	kind, body := unit.Kind(msg.Type), msg.Body
	switch msg.Type {
	case msgVideo, msgAudio, msgDataAMF0:
	case msgDataAMF3:
		kind = unit.KindData
		if len(body) > 0 {
			body = body[1:] // AMF3 data carries AMF0 after a format byte
		}
	default:
		return nil, nil
	}
	return unit.TagPacket(kind, clock.Next(uint32(msg.Timestamp/time.Millisecond)), body)
}
