// Package rtmpdial is the client side the benchmark tools share
// (bench/hopdelay, bench/rtmppub): dial rtmp://HOST:PORT/APP/NAME, do the
// handshake, connect and createStream with package media/rtmp, and
// publish.
package rtmpdial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/relaymesh/relaymesh/media/rtmp"
)

// Dial connects to raw, does the handshake, connect and createStream
// (stream id 1) and returns the message layer, the socket and the stream
// name. With wrap, the message layer writes through wrap(nc) instead of
// nc (a publisher that batches its writes).
func Dial(raw string, timeout time.Duration, wrap func(net.Conn) io.Writer) (*rtmp.MessageConn, net.Conn, string, error) {
	pu, err := url.Parse(raw)
	if err != nil {
		return nil, nil, "", err
	}
	app, name, ok := strings.Cut(strings.TrimPrefix(pu.Path, "/"), "/")
	if !ok {
		return nil, nil, "", fmt.Errorf("%s: want rtmp://HOST:PORT/APP/NAME", raw)
	}
	nc, err := net.DialTimeout("tcp", pu.Host, timeout)
	if err != nil {
		return nil, nil, "", err
	}
	nc.SetDeadline(time.Now().Add(timeout))
	var rw io.ReadWriter = nc
	if wrap != nil {
		rw = struct {
			io.Reader
			io.Writer
		}{nc, wrap(nc)}
	}
	mc, err := setup(rw, pu.Host, app)
	if err != nil {
		nc.Close()
		return nil, nil, "", err
	}
	nc.SetDeadline(time.Time{})
	return mc, nc, name, nil
}

func setup(rw io.ReadWriter, host, app string) (*rtmp.MessageConn, error) {
	mc, err := rtmp.ClientHandshake(rw)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := mc.SetWriteChunkSize(4096); err != nil {
		return nil, err
	}
	if err := mc.WriteCommand(3, 0, "connect", 1, amf0.Object{
		{Key: "app", Value: app}, {Key: "type", Value: "nonprivate"}, {Key: "flashVer", Value: "FMLE/3.0"},
		{Key: "tcUrl", Value: "rtmp://" + host + "/" + app},
	}); err != nil {
		return nil, err
	}
	if err := WaitCommand(mc, "_result"); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := mc.WriteCommand(3, 0, "createStream", 2, nil); err != nil {
		return nil, err
	}
	if err := WaitCommand(mc, "_result"); err != nil {
		return nil, fmt.Errorf("createStream: %w", err)
	}
	return mc, nil
}

// Publish sends publish NAME (live) on stream 1 and waits for the answer.
func Publish(mc *rtmp.MessageConn, name string) error {
	if err := mc.WriteCommand(8, 1, "publish", 3, nil, name, "live"); err != nil {
		return err
	}
	if err := WaitCommand(mc, "onStatus"); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// WaitCommand reads until a command named name (or an _error).
func WaitCommand(mc *rtmp.MessageConn, name string) error {
	for {
		msg, err := mc.Read()
		if err != nil {
			return err
		}
		cmd, ok, err := rtmp.DecodeCommand(msg)
		if err != nil || !ok {
			continue
		}
		if cmd.Name == "_error" {
			return errors.New("server answered _error")
		}
		if cmd.Name == name {
			return nil
		}
	}
}
