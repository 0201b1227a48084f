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

	"github.com/relaymesh/relaymesh/media"
)

// RTMP message types.
const (
	msgSetChunkSize     = 1
	msgAbort            = 2
	msgAck              = 3
	msgUserControl      = 4
	msgWindowAckSize    = 5
	msgSetPeerBandwidth = 6
	msgAudio            = 8
	msgVideo            = 9
	msgDataAMF3         = 15
	msgCommandAMF3      = 17
	msgDataAMF0         = 18
	msgCommandAMF0      = 20
)

// chunk stream ids for our control and command messages (media uses 4, 6, 7)
const (
	csidControl = 2
	csidCommand = 3
	csidStatus  = 5
)

// maxChunkSize caps what a client may announce with Set Chunk Size.
const maxChunkSize = 1 << 20

type conn struct {
	srv *Server
	nc  net.Conn
	log *slog.Logger

	bc *bytecounter.ReadWriter
	r  *rawmessage.Reader

	wmu sync.Mutex // serializes writes to nc
	w   *rawmessage.Writer

	app, tcURL string
	appQuery   string
	closeOnce  sync.Once
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
	c.bc = bytecounter.NewReadWriter(c.nc)
	keyIn, _, err := handshake.DoServer(c.bc, false)
	if err != nil {
		return refuse("rtmp handshake: %v", err)
	}
	if keyIn != nil {
		return refuse("encrypted RTMP (RTMPE) is not supported: use rtmp:// or SRT with a passphrase")
	}
	c.r = rawmessage.NewReader(c.bc, c.bc.Reader, c.sendAck)
	c.w = rawmessage.NewWriter(c.bc, c.bc.Writer, false)

	for {
		msg, err := c.readMessage()
		if err != nil {
			return err
		}
		if msg.Type != msgCommandAMF0 && msg.Type != msgCommandAMF3 {
			continue // media before publish, stray data: ignore
		}
		cmd, err := decodeCommand(msg)
		if err != nil {
			return refuse("%v", err)
		}
		switch cmd.name {
		case "connect":
			if err := c.onConnect(cmd); err != nil {
				return err
			}
		case "createStream":
			if err := c.writeCommand(csidCommand, 0, "_result", cmd.id, nil, float64(media.RTMPMessageStreamID)); err != nil {
				return err
			}
		case "releaseStream", "FCPublish", "FCUnpublish", "getStreamLength", "FCSubscribe":
			if cmd.id != 0 {
				if err := c.writeCommand(csidCommand, 0, "_result", cmd.id, nil, nil); err != nil {
					return err
				}
			}
		case "publish":
			if c.app == "" {
				return refuse("publish before connect")
			}
			return c.publish(ctx, cmd)
		case "play":
			if c.app == "" {
				return refuse("play before connect")
			}
			return c.play(ctx, cmd)
		case "deleteStream", "closeStream":
			return nil
		}
	}
}

// readMessage reads one message and handles protocol control messages.
func (c *conn) readMessage() (*rawmessage.Message, error) {
	for {
		msg, err := c.r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isTimeout(err) {
				return nil, err
			}
			return nil, refuse("bad rtmp chunk stream: %v", err)
		}
		switch msg.Type {
		case msgSetChunkSize:
			if len(msg.Body) < 4 {
				return nil, refuse("short Set Chunk Size message")
			}
			v := uint32(msg.Body[0]&0x7f)<<24 | uint32(msg.Body[1])<<16 | uint32(msg.Body[2])<<8 | uint32(msg.Body[3])
			if v < 1 || v > maxChunkSize {
				return nil, refuse("chunk size %d out of range 1..%d", v, maxChunkSize)
			}
			if err := c.r.SetChunkSize(v); err != nil {
				return nil, refuse("%v", err)
			}
			continue
		case msgAbort:
			if len(msg.Body) >= 4 {
				c.r.AbortChunkStream(uint32(msg.Body[3]))
			}
			continue
		case msgWindowAckSize:
			if len(msg.Body) >= 4 {
				c.r.SetWindowAckSize(uint32(msg.Body[0])<<24 | uint32(msg.Body[1])<<16 | uint32(msg.Body[2])<<8 | uint32(msg.Body[3]))
			}
			continue
		case msgAck, msgSetPeerBandwidth:
			continue
		case msgUserControl:
			if len(msg.Body) >= 6 && msg.Body[1] == 6 { // ping request -> ping response
				body := append([]byte{0, 7}, msg.Body[2:6]...)
				if err := c.writeRaw(csidControl, msgUserControl, 0, body); err != nil {
					return nil, err
				}
			}
			continue
		}
		return msg, nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) sendAck(n uint32) error {
	return c.writeRaw(csidControl, msgAck, 0, []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func (c *conn) writeRaw(csid byte, typ uint8, msid uint32, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.Write(&rawmessage.Message{ChunkStreamID: csid, Type: typ, MessageStreamID: msid, Body: body})
}

func (c *conn) writeCommand(csid byte, msid uint32, name string, id float64, args ...any) error {
	body, err := amf0.Data(append([]any{name, id}, args...)).Marshal()
	if err != nil {
		return err
	}
	return c.writeRaw(csid, msgCommandAMF0, msid, body)
}

func (c *conn) onStatus(level, code, desc string) error {
	return c.writeCommand(csidStatus, media.RTMPMessageStreamID, "onStatus", 0, nil, amf0.Object{
		{Key: "level", Value: level},
		{Key: "code", Value: code},
		{Key: "description", Value: desc},
	})
}

type command struct {
	name string
	id   float64
	args []any
}

func decodeCommand(msg *rawmessage.Message) (command, error) {
	body := msg.Body
	if msg.Type == msgCommandAMF3 {
		if len(body) == 0 {
			return command{}, fmt.Errorf("empty AMF3 command")
		}
		body = body[1:] // AMF3 commands carry AMF0 after a format byte
	}
	data, err := amf0.Unmarshal(body)
	if err != nil {
		return command{}, fmt.Errorf("bad AMF0 command: %v", err)
	}
	if len(data) < 2 {
		return command{}, fmt.Errorf("bad AMF0 command: %d values", len(data))
	}
	name, ok := data[0].(string)
	if !ok {
		return command{}, fmt.Errorf("bad AMF0 command: name is %T", data[0])
	}
	id, _ := data[1].(float64)
	return command{name: name, id: id, args: data[2:]}, nil
}

func (c *conn) onConnect(cmd command) error {
	if len(cmd.args) < 1 {
		return refuse("connect without a command object")
	}
	var obj amf0.Object
	switch o := cmd.args[0].(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return refuse("connect command object is %T", cmd.args[0])
	}
	app, _ := obj.GetString("app")
	c.tcURL, _ = obj.GetString("tcUrl")
	app, c.appQuery, _ = strings.Cut(strings.Trim(app, "/"), "?")
	if app == "" {
		return refuse("connect without an app name: use rtmp://HOST/APP/NAME")
	}
	c.app = app
	c.log = c.log.With("app", app)

	if err := c.writeRaw(csidControl, msgWindowAckSize, 0, be32(2500000)); err != nil {
		return err
	}
	if err := c.writeRaw(csidControl, msgSetPeerBandwidth, 0, append(be32(2500000), 2)); err != nil {
		return err
	}
	if err := c.writeRaw(csidControl, msgSetChunkSize, 0, be32(media.RTMPChunkSize)); err != nil {
		return err
	}
	c.w.SetChunkSize(media.RTMPChunkSize)
	return c.writeCommand(csidCommand, 0, "_result", cmd.id,
		amf0.Object{{Key: "fmsVer", Value: "FMS/3,5,7,7009"}, {Key: "capabilities", Value: float64(31)}},
		amf0.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "description", Value: "Connection succeeded."},
			{Key: "objectEncoding", Value: float64(0)},
		})
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// streamKey builds app/name from the publish or play argument and returns
// the query string the client attached (to the name or to the app).
func (c *conn) streamKey(cmd command) (key, query string, err error) {
	if len(cmd.args) < 2 {
		return "", "", refuse("%s without a stream name", cmd.name)
	}
	name, ok := cmd.args[1].(string)
	if !ok || name == "" {
		return "", "", refuse("%s without a stream name", cmd.name)
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
		if err := a(action, key, query, c.nc.RemoteAddr()); err != nil {
			return refusal{err} // the log line names the stream and role
		}
	}
	return nil
}
