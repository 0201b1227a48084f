package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
)

// setDataFrame is the AMF0 string "@setDataFrame" that encoders put before
// onMetaData; it is stripped so readers receive plain onMetaData.
var setDataFrame = []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

var onMetaData = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}

func (c *conn) publish(ctx context.Context, cmd command) error {
	key, query, err := c.streamKey(cmd)
	if err != nil {
		c.onStatus("error", "NetStream.Publish.BadName", err.Error())
		return err
	}
	c.log = c.log.With("stream", key, "role", "publisher")
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
	if err := c.onStatus("status", "NetStream.Publish.Start", key+" is now published."); err != nil {
		return err
	}
	c.log.Info("publishing")

	var clock unwrapper
	timeout := c.srv.cfg.Load().ReadTimeout
	for {
		c.nc.SetReadDeadline(time.Now().Add(timeout))
		msg, err := c.readMessage()
		if err != nil {
			if isTimeout(err) {
				return fmt.Errorf("no complete RTMP message from the publisher within %s", timeout)
			}
			return err
		}
		pkt, err := packetOf(msg, &clock)
		if err != nil {
			return err
		}
		if pkt == nil {
			if msg.Type == msgCommandAMF0 || msg.Type == msgCommandAMF3 {
				if cmd, err := decodeCommand(msg); err == nil {
					switch cmd.name {
					case "deleteStream", "closeStream", "FCUnpublish":
						c.log.Info("unpublished")
						return nil
					}
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

// packetOf turns a media or data message into a hub packet; other
// messages give nil. Malformed media is refused.
func packetOf(msg *rawmessage.Message, clock *unwrapper) (*media.Packet, error) {
	ts := clock.next(uint32(msg.Timestamp / time.Millisecond))
	switch msg.Type {
	case msgVideo:
		if len(msg.Body) == 0 {
			return nil, nil
		}
		v, ok := media.ParseVideoTag(msg.Body)
		if !ok {
			return nil, refuse("malformed video tag (%d bytes)", len(msg.Body))
		}
		return &media.Packet{Kind: media.KindVideo, Time: ts, Keyframe: v.Keyframe && !v.Header, Header: v.Header, Payload: msg.Body}, nil
	case msgAudio:
		if len(msg.Body) == 0 {
			return nil, nil
		}
		a, ok := media.ParseAudioTag(msg.Body)
		if !ok {
			return nil, refuse("malformed audio tag (%d bytes)", len(msg.Body))
		}
		return &media.Packet{Kind: media.KindAudio, Time: ts, Header: a.Header, Payload: msg.Body}, nil
	case msgDataAMF0, msgDataAMF3:
		body := msg.Body
		if msg.Type == msgDataAMF3 && len(body) > 0 {
			body = body[1:]
		}
		body = bytes.TrimPrefix(body, setDataFrame)
		return &media.Packet{Kind: media.KindData, Time: ts, Header: bytes.HasPrefix(body, onMetaData), Payload: body}, nil
	}
	return nil, nil
}

// unwrapper extends RTMP's 32-bit millisecond timestamps to a 64-bit
// timeline across wrap-arounds (every 49.7 days).
type unwrapper struct {
	last    uint32
	base    int64
	started bool
}

func (u *unwrapper) next(ts uint32) int64 {
	if u.started {
		switch {
		case ts < u.last && u.last-ts > 1<<31:
			u.base += 1 << 32 // wrapped forwards
		case ts > u.last && ts-u.last > 1<<31:
			return u.base - 1<<32 + int64(ts) // a late packet from before the wrap
		}
	}
	u.last, u.started = ts, true
	return u.base + int64(ts)
}
