package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/netutil"
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

// chunk stream ids the client sends on.
const (
	csidControl = 2
	csidCommand = 3
	csidAudio   = 4
	csidData    = 5
	csidVideo   = 6
	csidStream  = 8
)

// clientChunkSize is the chunk size the client announces for what it sends.
const clientChunkSize = 4096

// maxPeerChunkSize caps what a server may announce.
const maxPeerChunkSize = 1 << 20

// ErrRTMPRefused wraps an _error or error-level onStatus from the server.
var ErrRTMPRefused = errors.New("rtmp server refused")

// rtmpClient is one RTMP client connection.
type rtmpClient struct {
	nc     net.Conn
	bc     *bytecounter.ReadWriter
	r      *rawmessage.Reader
	wmu    sync.Mutex
	w      *rawmessage.Writer
	target string // redacted URL for errors

	app, name, tcURL string
	streamID         uint32
	tx               float64
}

// rtmpURL splits rtmp://host[:port]/app/name[?query] into the address, the
// app, the stream name (with the query) and the tcUrl.
func rtmpURL(u *url.URL) (addr, app, name, tcURL string, err error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	p := strings.Trim(u.Path, "/")
	app, name, ok := strings.Cut(p, "/")
	if !ok || app == "" || name == "" {
		return "", "", "", "", fmt.Errorf("rtmp URL %s: want rtmp://host[:port]/app/name", Redact(u.String()))
	}
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	tcURL = "rtmp://" + u.Host + "/" + app
	return host, app, name, tcURL, nil
}

// dialRTMP connects, handshakes and sends connect.
func dialRTMP(ctx context.Context, t Target, u *url.URL, flashVer string) (*rtmpClient, error) {
	addr, app, name, tcURL, err := rtmpURL(u)
	if err != nil {
		return nil, err
	}
	if t.DSCP < 0 || t.DSCP > 63 {
		return nil, fmt.Errorf("rtmp target %s: dscp %d is outside 0..63", Redact(t.URL), t.DSCP)
	}
	d := net.Dialer{Timeout: connectTimeout}
	if t.DSCP > 0 {
		d.Control = netutil.DSCPControl(t.DSCP)
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rtmp connect %s: %w", Redact(t.URL), err)
	}
	c := &rtmpClient{nc: nc, target: Redact(t.URL), app: app, name: name, tcURL: tcURL}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	nc.SetDeadline(time.Now().Add(connectTimeout))
	if err := c.connect(flashVer); err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return c, nil
}

func (c *rtmpClient) connect(flashVer string) error {
	c.bc = bytecounter.NewReadWriter(c.nc)
	if _, _, err := handshake.DoClient(c.bc, false, false); err != nil {
		return fmt.Errorf("rtmp handshake with %s: %w (is it an RTMP server?)", c.target, err)
	}
	c.r = rawmessage.NewReader(c.bc, c.bc.Reader, c.sendAck)
	c.w = rawmessage.NewWriter(c.bc, c.bc.Writer, false)
	if err := c.writeRaw(csidControl, msgSetChunkSize, 0, be32(clientChunkSize)); err != nil {
		return err
	}
	c.w.SetChunkSize(clientChunkSize)
	res, err := c.call("connect", 0, amf0.Object{
		{Key: "app", Value: c.app},
		{Key: "flashVer", Value: flashVer},
		{Key: "tcUrl", Value: c.tcURL},
		{Key: "type", Value: "nonprivate"},
		{Key: "fpad", Value: false},
		{Key: "capabilities", Value: float64(15)},
		{Key: "audioCodecs", Value: float64(3191)},
		{Key: "videoCodecs", Value: float64(252)},
		{Key: "videoFunction", Value: float64(1)},
		{Key: "objectEncoding", Value: float64(0)},
	})
	if err != nil {
		return fmt.Errorf("rtmp connect to app %q: %w", c.app, err)
	}
	_ = res
	return nil
}

// createStream asks for a message stream id.
func (c *rtmpClient) createStream() error {
	res, err := c.call("createStream", 0, nil)
	if err != nil {
		return fmt.Errorf("rtmp createStream: %w", err)
	}
	if len(res.args) < 2 {
		return fmt.Errorf("rtmp createStream: answer without a stream id")
	}
	id, ok := res.args[1].(float64)
	if !ok || id < 0 || id > 1<<24 {
		return fmt.Errorf("rtmp createStream: bad stream id %v", res.args[1])
	}
	c.streamID = uint32(id)
	return nil
}

// publish sends releaseStream, FCPublish, createStream and publish and waits
// for NetStream.Publish.Start.
func (c *rtmpClient) publish() error {
	if err := c.send(csidCommand, 0, "releaseStream", c.nextTx(), nil, c.name); err != nil {
		return err
	}
	if err := c.send(csidCommand, 0, "FCPublish", c.nextTx(), nil, c.name); err != nil {
		return err
	}
	if err := c.createStream(); err != nil {
		return err
	}
	if err := c.send(csidStream, c.streamID, "publish", c.nextTx(), nil, c.name, "live"); err != nil {
		return err
	}
	return c.waitStatus("NetStream.Publish.Start")
}

// play sends createStream and play and waits for NetStream.Play.Start.
func (c *rtmpClient) play() error {
	if err := c.createStream(); err != nil {
		return err
	}
	if err := c.send(csidStream, c.streamID, "play", 0, nil, c.name, float64(-2000)); err != nil {
		return err
	}
	// Set Buffer Length (user control event 3) as players do.
	ev := []byte{0, 3, byte(c.streamID >> 24), byte(c.streamID >> 16), byte(c.streamID >> 8), byte(c.streamID), 0, 0, 0x0b, 0xb8}
	if err := c.writeRaw(csidControl, msgUserControl, 0, ev); err != nil {
		return err
	}
	return c.waitStatus("NetStream.Play.Start")
}

func (c *rtmpClient) nextTx() float64 {
	c.tx++
	return c.tx
}

type command struct {
	name string
	id   float64
	args []any
}

// call sends a command and waits for its _result; _error is a refusal.
func (c *rtmpClient) call(name string, msid uint32, obj any, args ...any) (command, error) {
	id := c.nextTx()
	if err := c.send(csidCommand, msid, name, id, append([]any{obj}, args...)...); err != nil {
		return command{}, err
	}
	for {
		msg, err := c.readMessage()
		if err != nil {
			return command{}, c.readErr(err)
		}
		cmd, ok, err := decodeCommand(msg)
		if err != nil {
			return command{}, err
		}
		if !ok || cmd.id != id {
			if ok && cmd.name == "onStatus" {
				if err := statusError(cmd); err != nil {
					return command{}, err
				}
			}
			continue
		}
		switch cmd.name {
		case "_result":
			return cmd, nil
		case "_error":
			return command{}, fmt.Errorf("%w %s: %s", ErrRTMPRefused, name, describe(cmd))
		}
	}
}

// waitStatus reads until an onStatus with code want; an error-level
// status is a refusal.
func (c *rtmpClient) waitStatus(want string) error {
	for {
		msg, err := c.readMessage()
		if err != nil {
			return c.readErr(err)
		}
		cmd, ok, err := decodeCommand(msg)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch cmd.name {
		case "onStatus":
			if err := statusError(cmd); err != nil {
				return err
			}
			if code, _ := statusCode(cmd); code == want {
				return nil
			}
		case "_error":
			return fmt.Errorf("%w: %s", ErrRTMPRefused, describe(cmd))
		}
	}
}

func (c *rtmpClient) readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("rtmp %s: no answer within %s", c.target, connectTimeout)
	}
	return fmt.Errorf("rtmp %s: %w", c.target, err)
}

// statusObject returns the info object of an onStatus.
func statusObject(cmd command) amf0.Object {
	for _, a := range cmd.args {
		switch o := a.(type) {
		case amf0.Object:
			return o
		case amf0.ECMAArray:
			return amf0.Object(o)
		}
	}
	return nil
}

func statusCode(cmd command) (code, level string) {
	o := statusObject(cmd)
	code, _ = o.GetString("code")
	level, _ = o.GetString("level")
	return code, level
}

// statusError turns an error-level onStatus into an error.
func statusError(cmd command) error {
	code, level := statusCode(cmd)
	if level != "error" && !strings.HasSuffix(code, ".BadName") && !strings.HasSuffix(code, ".StreamNotFound") &&
		!strings.HasSuffix(code, ".Failed") && !strings.HasSuffix(code, ".Unauthorized") && !strings.HasSuffix(code, ".Rejected") {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRTMPRefused, describe(cmd))
}

func describe(cmd command) string {
	o := statusObject(cmd)
	code, _ := o.GetString("code")
	desc, _ := o.GetString("description")
	switch {
	case code != "" && desc != "":
		return code + " (" + desc + ")"
	case code != "":
		return code
	case desc != "":
		return desc
	}
	return cmd.name
}

// decodeCommand decodes an AMF0 (or AMF3-wrapped AMF0) command message;
// ok is false for messages that are not commands.
func decodeCommand(msg *rawmessage.Message) (command, bool, error) {
	if msg.Type != msgCommandAMF0 && msg.Type != msgCommandAMF3 {
		return command{}, false, nil
	}
	body := msg.Body
	if msg.Type == msgCommandAMF3 {
		if len(body) == 0 {
			return command{}, false, fmt.Errorf("empty AMF3 command")
		}
		body = body[1:]
	}
	data, err := amf0.Unmarshal(body)
	if err != nil {
		return command{}, false, fmt.Errorf("bad AMF0 command from the server: %v", err)
	}
	if len(data) < 2 {
		return command{}, false, fmt.Errorf("bad AMF0 command from the server: %d values", len(data))
	}
	name, ok := data[0].(string)
	if !ok {
		return command{}, false, fmt.Errorf("bad AMF0 command from the server: name is %T", data[0])
	}
	id, _ := data[1].(float64)
	return command{name: name, id: id, args: data[2:]}, true, nil
}

// readMessage reads one message and handles protocol control messages.
func (c *rtmpClient) readMessage() (*rawmessage.Message, error) {
	for {
		msg, err := c.r.Read()
		if err != nil {
			return nil, err
		}
		switch msg.Type {
		case msgSetChunkSize:
			if len(msg.Body) < 4 {
				return nil, fmt.Errorf("rtmp %s: short Set Chunk Size", c.target)
			}
			v := uint32(msg.Body[0]&0x7f)<<24 | uint32(msg.Body[1])<<16 | uint32(msg.Body[2])<<8 | uint32(msg.Body[3])
			if v < 1 || v > maxPeerChunkSize {
				return nil, fmt.Errorf("rtmp %s: chunk size %d out of range", c.target, v)
			}
			if err := c.r.SetChunkSize(v); err != nil {
				return nil, err
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

func (c *rtmpClient) sendAck(n uint32) error {
	return c.writeRaw(csidControl, msgAck, 0, be32(n))
}

func (c *rtmpClient) writeRaw(csid byte, typ uint8, msid uint32, body []byte) error {
	return c.writeMsg(&rawmessage.Message{ChunkStreamID: csid, Type: typ, MessageStreamID: msid, Body: body})
}

func (c *rtmpClient) writeMsg(m *rawmessage.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.Write(m)
}

func (c *rtmpClient) send(csid byte, msid uint32, name string, id float64, args ...any) error {
	body, err := amf0.Data(append([]any{name, id}, args...)).Marshal()
	if err != nil {
		return err
	}
	return c.writeRaw(csid, msgCommandAMF0, msid, body)
}

func (c *rtmpClient) close() {
	c.nc.Close()
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// kindCSID maps a packet kind to the chunk stream it is sent on.
func kindCSID(k media.Kind) byte {
	switch k {
	case media.KindAudio:
		return csidAudio
	case media.KindVideo:
		return csidVideo
	}
	return csidData
}
