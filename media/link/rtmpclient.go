package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

// chunk stream ids the client sends on.
const (
	csidCommand = 3
	csidAudio   = 4
	csidData    = 5
	csidVideo   = 6
	csidStream  = 8
)

// clientChunkSize is the chunk size the client announces for what it sends.
const clientChunkSize = 4096

// ErrRTMPRefused wraps an _error or error-level onStatus from the server.
var ErrRTMPRefused = errors.New("rtmp server refused")

// rtmpClient is one RTMP client connection.
type rtmpClient struct {
	nc     net.Conn
	mc     *rtmp.MessageConn
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
	d := net.Dialer{Timeout: connectTimeout, Control: t.dialControl()}
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
	mc, err := rtmp.ClientHandshake(c.nc)
	if err != nil {
		return fmt.Errorf("rtmp handshake with %s: %w (is it an RTMP server?)", c.target, err)
	}
	c.mc = mc
	if err := c.mc.SetWriteChunkSize(clientChunkSize); err != nil {
		return err
	}
	_, err = c.call("connect", 0, amf0.Object{
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
	return nil
}

// createStream asks for a message stream id.
func (c *rtmpClient) createStream() error {
	res, err := c.call("createStream", 0, nil)
	if err != nil {
		return fmt.Errorf("rtmp createStream: %w", err)
	}
	if len(res.Args) < 2 {
		return fmt.Errorf("rtmp createStream: answer without a stream id")
	}
	id, ok := res.Args[1].(float64)
	if !ok || id < 0 || id > 1<<24 {
		return fmt.Errorf("rtmp createStream: bad stream id %v", res.Args[1])
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
	// Set Buffer Length (3000 ms) as players do.
	if err := c.mc.Write(rtmp.UserControl(rtmp.EventSetBufferLength, c.streamID, 3000)); err != nil {
		return err
	}
	return c.waitStatus("NetStream.Play.Start")
}

func (c *rtmpClient) nextTx() float64 {
	c.tx++
	return c.tx
}

// call sends a command and waits for its _result; _error is a refusal.
func (c *rtmpClient) call(name string, msid uint32, obj any, args ...any) (rtmp.Command, error) {
	id := c.nextTx()
	if err := c.send(csidCommand, msid, name, id, append([]any{obj}, args...)...); err != nil {
		return rtmp.Command{}, err
	}
	for {
		msg, err := c.readMessage()
		if err != nil {
			return rtmp.Command{}, c.readErr(err)
		}
		cmd, ok, err := decodeCommand(msg)
		if err != nil {
			return rtmp.Command{}, err
		}
		if !ok || cmd.ID != id {
			if ok && cmd.Name == "onStatus" {
				if err := statusError(cmd); err != nil {
					return rtmp.Command{}, err
				}
			}
			continue
		}
		switch cmd.Name {
		case "_result":
			return cmd, nil
		case "_error":
			return rtmp.Command{}, fmt.Errorf("%w %s: %s", ErrRTMPRefused, name, describe(cmd))
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
		switch cmd.Name {
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
func statusObject(cmd rtmp.Command) amf0.Object {
	for _, a := range cmd.Args {
		switch o := a.(type) {
		case amf0.Object:
			return o
		case amf0.ECMAArray:
			return amf0.Object(o)
		}
	}
	return nil
}

func statusCode(cmd rtmp.Command) (code, level string) {
	o := statusObject(cmd)
	code, _ = o.GetString("code")
	level, _ = o.GetString("level")
	return code, level
}

// statusError turns an error-level onStatus into an error.
func statusError(cmd rtmp.Command) error {
	code, level := statusCode(cmd)
	if level != "error" && !strings.HasSuffix(code, ".BadName") && !strings.HasSuffix(code, ".StreamNotFound") &&
		!strings.HasSuffix(code, ".Failed") && !strings.HasSuffix(code, ".Unauthorized") && !strings.HasSuffix(code, ".Rejected") {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRTMPRefused, describe(cmd))
}

func describe(cmd rtmp.Command) string {
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
	return cmd.Name
}

// decodeCommand decodes a command message from the server; ok is false
// for messages that are not commands.
func decodeCommand(msg *rawmessage.Message) (rtmp.Command, bool, error) {
	cmd, ok, err := rtmp.DecodeCommand(msg)
	if err != nil {
		return cmd, ok, fmt.Errorf("from the server: %w", err)
	}
	return cmd, ok, nil
}

// readMessage reads one message; the server's protocol control messages
// are handled on the way.
func (c *rtmpClient) readMessage() (*rawmessage.Message, error) { return c.mc.Read() }

// send sends a command.
func (c *rtmpClient) send(csid byte, msid uint32, name string, id float64, args ...any) error {
	return c.mc.WriteCommand(csid, msid, name, id, args...)
}

func (c *rtmpClient) close() {
	c.nc.Close()
}

// kindCSID maps a packet kind to the chunk stream it is sent on.
func kindCSID(k unit.Kind) byte {
	switch k {
	case unit.KindAudio:
		return csidAudio
	case unit.KindVideo:
		return csidVideo
	}
	return csidData
}
