// Package rtmpdial is the client side the benchmark tools share
// (bench/hopdelay, bench/rtmppub, bench/rtmpreader): parse
// rtmp://HOST[:PORT]/APP/NAME, dial, do the handshake, connect and
// createStream with package media/rtmp, publish, and frame packets as RTMP
// messages.
package rtmpdial

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Target is a parsed rtmp://HOST[:PORT]/APP/NAME URL.
type Target struct {
	Addr  string // HOST:PORT, port 1935 when the URL has none
	App   string // the path up to the last slash
	Name  string // after it, with the URL's query
	TCURL string // rtmp://Addr/App
}

// ParseURL parses raw into a Target.
func ParseURL(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, err
	}
	if u.Scheme != "rtmp" {
		return Target{}, fmt.Errorf("url %q: scheme %q is not rtmp", raw, u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndex(p, "/")
	if i <= 0 || i == len(p)-1 {
		return Target{}, fmt.Errorf("url %q: want rtmp://HOST[:PORT]/APP/NAME", raw)
	}
	app, name := p[:i], p[i+1:]
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	return Target{Addr: host, App: app, Name: name, TCURL: "rtmp://" + host + "/" + app}, nil
}

// StreamURL is u with its first %d replaced by i (u when it has none).
func StreamURL(u string, i int) string {
	return strings.Replace(u, "%d", strconv.Itoa(i), 1)
}

// Dial connects to raw, does the handshake, connect and createStream
// (stream id 1) and returns the message layer, the socket and the stream
// name. With wrap, the message layer writes through wrap(nc) instead of
// nc (a publisher that batches its writes).
func Dial(raw string, timeout time.Duration, wrap func(net.Conn) io.Writer) (*rtmp.MessageConn, net.Conn, string, error) {
	t, err := ParseURL(raw)
	if err != nil {
		return nil, nil, "", err
	}
	nc, err := net.DialTimeout("tcp", t.Addr, timeout)
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
	mc, err := setup(rw, t)
	if err != nil {
		nc.Close()
		return nil, nil, "", err
	}
	nc.SetDeadline(time.Time{})
	return mc, nc, t.Name, nil
}

func setup(rw io.ReadWriter, t Target) (*rtmp.MessageConn, error) {
	mc, err := rtmp.ClientHandshake(rw)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := mc.SetWriteChunkSize(4096); err != nil {
		return nil, err
	}
	if err := mc.WriteCommand(3, 0, "connect", 1, amf0.Object{
		{Key: "app", Value: t.App}, {Key: "type", Value: "nonprivate"}, {Key: "flashVer", Value: "FMLE/3.0"},
		{Key: "tcUrl", Value: t.TCURL},
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

// Discard reads mc until it fails: the server's acknowledgements and pings
// to a publisher, which never looks at them.
func Discard(mc *rtmp.MessageConn) {
	for {
		if _, err := mc.Read(); err != nil {
			return
		}
	}
}

// Message frames p, at ts ms, as an RTMP message on stream 1: video on
// chunk stream 6, audio on 4, data on 7.
func Message(p *unit.Packet, ts int64) *rawmessage.Message {
	csid := byte(7)
	switch p.Kind {
	case unit.KindVideo:
		csid = 6
	case unit.KindAudio:
		csid = 4
	}
	return &rawmessage.Message{ChunkStreamID: csid, Timestamp: time.Duration(ts) * time.Millisecond,
		Type: uint8(p.Kind), MessageStreamID: 1, Body: p.Payload}
}
