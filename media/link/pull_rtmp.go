package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

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
	var clock unit.Unwrapper
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
		pk, err := rtmp.MessagePacket(msg, &clock)
		if err != nil {
			return fmt.Errorf("rtmp %s: %w", c.target, err)
		}
		if pk == nil {
			cmd, ok, err := decodeCommand(msg)
			if err != nil {
				return fmt.Errorf("rtmp %s: %w", c.target, err)
			}
			if ok && cmd.Name == "onStatus" {
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
