package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
)

var rtmpSampleAccess = []byte{0x02, 0x00, 0x11, '|', 'R', 't', 'm', 'p', 'S', 'a', 'm', 'p', 'l', 'e', 'A', 'c', 'c', 'e', 's', 's'}

// ErrSourceEnded: the remote stream stopped (the server said so).
var ErrSourceEnded = errors.New("the source stream ended")

// pullRTMP plays an RTMP stream and publishes its messages as hub packets.
func (p *Puller) pullRTMP(ctx context.Context, t Target, u *url.URL, sk *sink) error {
	c, err := dialRTMP(ctx, t, u, "LNX 9,0,124,2")
	if err != nil {
		return err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	if err := c.play(); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("rtmp play %s: %w", c.name, err)
	}
	var clock unwrapper
	for {
		c.nc.SetDeadline(time.Now().Add(p.cfg.ReadTimeout))
		msg, err := c.readMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("rtmp %s: %w for %s", c.target, ErrIdle, p.cfg.ReadTimeout)
			}
			return fmt.Errorf("rtmp %s: %w", c.target, err)
		}
		p.tr.addBytes(len(msg.Body))
		pk, err := packetOf(msg, &clock)
		if err != nil {
			return fmt.Errorf("rtmp %s: %w", c.target, err)
		}
		if pk == nil {
			cmd, ok, err := decodeCommand(msg)
			if err != nil {
				return fmt.Errorf("rtmp %s: %w", c.target, err)
			}
			if ok && cmd.name == "onStatus" {
				if err := statusError(cmd); err != nil {
					return fmt.Errorf("rtmp %s: %w", c.target, err)
				}
				switch code, _ := statusCode(cmd); code {
				case "NetStream.Play.UnpublishNotify", "NetStream.Play.Stop", "NetStream.Play.Complete":
					return fmt.Errorf("rtmp %s: %w (%s)", c.target, ErrSourceEnded, code)
				}
			}
			continue
		}
		if err := sk.write(pk); err != nil {
			return err
		}
	}
}

// packetOf turns a media or data message into a hub packet; other
// messages give nil. Malformed media is an error. (The same
// classification as media/rtmp's publisher path.)
func packetOf(msg *rawmessage.Message, clock *unwrapper) (*media.Packet, error) {
	switch msg.Type {
	case msgVideo:
		if len(msg.Body) == 0 {
			return nil, nil
		}
		v, ok := media.ParseVideoTag(msg.Body)
		if !ok {
			return nil, fmt.Errorf("malformed video tag (%d bytes)", len(msg.Body))
		}
		ts := clock.next(uint32(msg.Timestamp / time.Millisecond))
		return &media.Packet{Kind: media.KindVideo, Time: ts, Keyframe: v.Keyframe && !v.Header, Header: v.Header, Payload: msg.Body}, nil
	case msgAudio:
		if len(msg.Body) == 0 {
			return nil, nil
		}
		a, ok := media.ParseAudioTag(msg.Body)
		if !ok {
			return nil, fmt.Errorf("malformed audio tag (%d bytes)", len(msg.Body))
		}
		ts := clock.next(uint32(msg.Timestamp / time.Millisecond))
		return &media.Packet{Kind: media.KindAudio, Time: ts, Header: a.Header, Payload: msg.Body}, nil
	case msgDataAMF0, msgDataAMF3:
		body := msg.Body
		if msg.Type == msgDataAMF3 && len(body) > 0 {
			body = body[1:]
		}
		body = bytes.TrimPrefix(body, setDataFrame)
		if len(body) == 0 || bytes.HasPrefix(body, rtmpSampleAccess) {
			return nil, nil
		}
		ts := clock.next(uint32(msg.Timestamp / time.Millisecond))
		return &media.Packet{Kind: media.KindData, Time: ts, Header: bytes.HasPrefix(body, onMetaData), Payload: body}, nil
	}
	return nil, nil
}

// unwrapper extends 32-bit millisecond timestamps to a 64-bit timeline
// across wrap-arounds (every 49.7 days).
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
