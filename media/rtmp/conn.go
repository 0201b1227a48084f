package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// chunk stream ids for our command messages (control uses 2, media 4, 6, 7)
const (
	csidCommand = 3
	csidStatus  = 5
)

type conn struct {
	srv *Server
	nc  net.Conn
	log *slog.Logger

	mc      *MessageConn
	connLog *slog.Logger // log with the app, before a publish or play adds the stream

	app, tcURL  string
	appQuery    string
	unpublished bool // a publish on this connection ended with an unpublish
	closeOnce   sync.Once
}

// refusal is an error that ends a connection because of what the client
// sent or may not do; it is logged at warn level with its reason.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func refuse(format string, a ...any) error { return refusal{fmt.Errorf(format, a...)} }

func (c *conn) shutdown() {
	c.closeOnce.Do(func() { c.nc.Close() })
}

func (c *conn) serve(ctx context.Context) {
	defer c.shutdown()
	err := c.run(ctx)
	var rf refusal
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), ctx.Err() != nil:
		c.log.Debug("connection closed", "err", err)
	case errors.As(err, &rf):
		c.srv.Refused.Add(1)
		c.log.Warn("connection refused", "reason", err.Error())
	default:
		c.log.Info("connection closed", "reason", err.Error())
	}
}

func (c *conn) run(ctx context.Context) error {
	cfg := c.srv.cfg.Load()
	c.nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	bc := bytecounter.NewReadWriter(c.nc)
	keyIn, _, err := handshake.DoServer(bc, false)
	if err != nil {
		return refuse("rtmp handshake: %v", err)
	}
	if keyIn != nil {
		return refuse("encrypted RTMP (RTMPE) is not supported: use rtmp:// or SRT with a passphrase")
	}
	c.mc = newMessageConn(bc, c.nc)

	for {
		msg, err := c.readMessage()
		if err != nil {
			if c.unpublished && isTimeout(err) {
				return nil // the client left the connection idle after unpublishing
			}
			return err
		}
		cmd, ok, err := DecodeCommand(msg)
		if err != nil {
			return refuse("%v", err)
		}
		if !ok {
			continue // media before publish, stray data: ignore
		}
		switch cmd.Name {
		case "connect":
			if err := c.onConnect(cmd); err != nil {
				return err
			}
		case "createStream":
			if err := c.mc.WriteCommand(csidCommand, 0, "_result", cmd.ID, nil, float64(unit.RTMPMessageStreamID)); err != nil {
				return err
			}
		case "releaseStream", "FCPublish", "FCUnpublish", "getStreamLength", "FCSubscribe":
			if cmd.ID != 0 {
				if err := c.mc.WriteCommand(csidCommand, 0, "_result", cmd.ID, nil, nil); err != nil {
					return err
				}
			}
		case "publish":
			if c.app == "" {
				return refuse("publish before connect")
			}
			if err := c.publish(ctx, cmd); err != nil {
				return err
			}
			// Unpublished: back to commands until the client closes
			// (bounded), as nginx-rtmp does. Clients send FCUnpublish and
			// deleteStream first, GStreamer's rtmp2sink fails its pipeline
			// when the server closes before it does, and an encoder may
			// publish again on the same connection.
			c.unpublished = true
			c.nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
		case "play":
			if c.app == "" {
				return refuse("play before connect")
			}
			return c.play(ctx, cmd)
		case "deleteStream", "closeStream":
			if !c.unpublished {
				return nil
			}
		}
	}
}

// readMessage reads one message; a malformed chunk stream or control
// message is a refusal.
func (c *conn) readMessage() (*rawmessage.Message, error) {
	msg, err := c.mc.Read()
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return nil, refusal{err}
	}
	return msg, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) onStatus(level, code, desc string) error {
	return c.mc.WriteCommand(csidStatus, unit.RTMPMessageStreamID, "onStatus", 0, nil, amf0.Object{
		{Key: "level", Value: level},
		{Key: "code", Value: code},
		{Key: "description", Value: desc},
	})
}

func (c *conn) onConnect(cmd Command) error {
	if len(cmd.Args) < 1 {
		return refuse("connect without a command object")
	}
	var obj amf0.Object
	switch o := cmd.Args[0].(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return refuse("connect command object is %T", cmd.Args[0])
	}
	app, _ := obj.GetString("app")
	c.tcURL, _ = obj.GetString("tcUrl")
	app, c.appQuery, _ = strings.Cut(strings.Trim(app, "/"), "?")
	if app == "" {
		return refuse("connect without an app name: use rtmp://HOST/APP/NAME")
	}
	c.app = app
	c.log = c.log.With("app", app)
	c.connLog = c.log

	if err := c.mc.Write(WindowAckSize(2500000)); err != nil {
		return err
	}
	if err := c.mc.Write(SetPeerBandwidth(2500000, 2)); err != nil {
		return err
	}
	if err := c.mc.SetWriteChunkSize(unit.RTMPChunkSize); err != nil {
		return err
	}
	return c.mc.WriteCommand(csidCommand, 0, "_result", cmd.ID,
		amf0.Object{{Key: "fmsVer", Value: "FMS/3,5,7,7009"}, {Key: "capabilities", Value: float64(31)}},
		amf0.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "description", Value: "Connection succeeded."},
			{Key: "objectEncoding", Value: float64(0)},
		})
}

// streamKey builds app/name from the publish or play argument and returns
// the query string the client attached (to the name or to the app).
func (c *conn) streamKey(cmd Command) (key, query string, err error) {
	if len(cmd.Args) < 2 {
		return "", "", refuse("%s without a stream name", cmd.Name)
	}
	name, ok := cmd.Args[1].(string)
	if !ok || name == "" {
		return "", "", refuse("%s without a stream name", cmd.Name)
	}
	name, query, _ = strings.Cut(name, "?")
	if query == "" {
		query = c.appQuery
	}
	key = c.app + "/" + name
	if err := media.CheckKey(key); err != nil {
		return "", "", refusal{err}
	}
	return key, query, nil
}

func (c *conn) authorize(action, key, query string) error {
	if a := c.srv.cfg.Load().Authorize; a != nil {
		token, err := auth.TokenOf(query)
		if err == nil {
			err = a(media.Access{Protocol: "rtmp", Action: action, Key: key, Token: token, Remote: c.nc.RemoteAddr()})
		}
		if err != nil {
			return refusal{err} // the log line names the stream and role
		}
	}
	return nil
}
