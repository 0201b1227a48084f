package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/bench/benchutil"
	"github.com/relaymesh/relaymesh/bench/rtmpdial"
)

// RTMP message types the reader looks at during the play handshake.
const (
	msgSetChunkSize  = 1
	msgAck           = 3
	msgUserControl   = 4
	msgWindowAckSize = 5
	msgAudio         = 8
	msgVideo         = 9
	msgCommandAMF0   = 20
)

// player is one RTMP play connection. After the play handshake it only
// counts the bytes it reads and acknowledges them.
type player struct {
	nc    net.Conn
	br    *bufio.Reader
	bytes atomic.Uint64 // media-phase bytes read (after play started)
	done  atomic.Bool   // the connection ended (server closed it or an error)
	err   atomic.Pointer[error]

	bc        *bytecounter.Reader // every byte read from the socket, for acks
	ackWindow uint32
	lastAck   uint32
	acks      atomic.Uint64 // acknowledgements sent

	r      *rawmessage.Reader // the message reader of the play handshake, for runFrames
	frames atomic.Uint64      // video messages read (runFrames only)
	stream int                // which of the -streams this player plays
}

// dial connects, does the handshake, connect, createStream and play, and
// returns once the server said NetStream.Play.Start or sent media.
func dial(ctx context.Context, t rtmpdial.Target, timeout time.Duration) (*player, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	p := &player{nc: nc}
	if err := p.open(t, timeout); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *player) open(t rtmpdial.Target, timeout time.Duration) error {
	p.nc.SetDeadline(time.Now().Add(timeout))
	if _, _, err := handshake.DoClient(p.nc, false, false); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	// rawmessage.NewReader keeps a *bufio.Reader of at least the default
	// size (4096) as is, so after play we keep reading the same buffer
	// raw; reads of a larger buffer then bypass it once it is drained.
	p.bc = bytecounter.NewReader(p.nc)
	p.br = bufio.NewReaderSize(p.bc, 4096)
	r := rawmessage.NewReader(p.br, p.bc, func(n uint32) error { return p.writeAck(n) })
	p.r = r
	bw := bytecounter.NewWriter(p.nc)
	w := rawmessage.NewWriter(p.nc, bw, false)

	cmd := func(csid byte, msid uint32, args ...any) error {
		body, err := amf0.Data(args).Marshal()
		if err != nil {
			return err
		}
		return w.Write(&rawmessage.Message{ChunkStreamID: csid, Type: msgCommandAMF0, MessageStreamID: msid, Body: body})
	}
	if err := cmd(3, 0, "connect", float64(1), amf0.Object{
		{Key: "app", Value: t.App},
		{Key: "flashVer", Value: "LNX 9,0,124,2"},
		{Key: "tcUrl", Value: t.TCURL},
		{Key: "fpad", Value: false},
		{Key: "capabilities", Value: float64(15)},
		{Key: "audioCodecs", Value: float64(4071)},
		{Key: "videoCodecs", Value: float64(252)},
		{Key: "videoFunction", Value: float64(1)},
	}); err != nil {
		return fmt.Errorf("send connect: %w", err)
	}

	streamID := float64(-1)
	state := "connect"
	for {
		msg, err := r.Read()
		if err != nil {
			return fmt.Errorf("read (%s): %w", state, err)
		}
		switch msg.Type {
		case msgSetChunkSize:
			if len(msg.Body) >= 4 {
				if err := r.SetChunkSize(be32(msg.Body) & 0x7fffffff); err != nil {
					return err
				}
			}
			continue
		case msgWindowAckSize:
			if len(msg.Body) >= 4 {
				p.ackWindow = be32(msg.Body)
				r.SetWindowAckSize(p.ackWindow)
			}
			continue
		case msgUserControl:
			if len(msg.Body) >= 6 && msg.Body[1] == 6 { // ping request
				body := append([]byte{0, 7}, msg.Body[2:6]...)
				if err := w.Write(&rawmessage.Message{ChunkStreamID: 2, Type: msgUserControl, Body: body}); err != nil {
					return err
				}
			}
			continue
		case msgAudio, msgVideo:
			if state == "play" {
				return p.started()
			}
			continue
		case msgCommandAMF0:
		default:
			continue
		}
		data, err := amf0.Unmarshal(msg.Body)
		if err != nil || len(data) < 2 {
			return fmt.Errorf("bad command from server (%s): %v", state, err)
		}
		name, _ := data[0].(string)
		switch {
		case name == "_result" && state == "connect":
			state = "createStream"
			if err := cmd(3, 0, "createStream", float64(2), nil); err != nil {
				return err
			}
		case name == "_result" && state == "createStream":
			if len(data) >= 4 {
				streamID, _ = data[3].(float64)
			}
			if streamID < 0 {
				return fmt.Errorf("createStream result without a stream id: %v", data)
			}
			state = "play"
			if err := cmd(8, uint32(streamID), "play", float64(0), nil, t.Name, float64(-2000)); err != nil {
				return err
			}
			// Set Buffer Length (user control 3) as players send it.
			sb := []byte{0, 3, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8}
			sb[5] = byte(uint32(streamID))
			if err := w.Write(&rawmessage.Message{ChunkStreamID: 2, Type: msgUserControl, Body: sb}); err != nil {
				return err
			}
		case name == "_error":
			return fmt.Errorf("server refused %s: %v", state, describe(data))
		case name == "onStatus":
			code, level := statusCode(data)
			if level == "error" || strings.Contains(code, "Failed") || strings.Contains(code, "NotFound") || strings.Contains(code, "Unauthorized") {
				return fmt.Errorf("server refused %s: %s", state, code)
			}
			if state == "play" && code == "NetStream.Play.Start" {
				return p.started()
			}
		}
	}
}

// started switches the connection to the counting phase. Bytes already
// buffered are media too and are counted by the first reads.
func (p *player) started() error {
	p.nc.SetDeadline(time.Time{})
	p.lastAck = uint32(p.bc.Count())
	return nil
}

func statusCode(data amf0.Data) (code, level string) {
	for _, v := range data[2:] {
		if o, ok := v.(amf0.Object); ok {
			code, _ = o.GetString("code")
			level, _ = o.GetString("level")
		}
	}
	return code, level
}

func describe(data amf0.Data) string {
	code, _ := statusCode(data)
	for _, v := range data[2:] {
		if o, ok := v.(amf0.Object); ok {
			if d, ok := o.GetString("description"); ok {
				return code + ": " + d
			}
		}
	}
	return fmt.Sprint(data)
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// writeAck sends an Acknowledgement with sequence number n on chunk
// stream 2 as one self-contained type-0 chunk.
func (p *player) writeAck(n uint32) error {
	b := [16]byte{0x02, 0, 0, 0, 0, 0, 4, msgAck, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	_, err := p.nc.Write(b[:])
	p.acks.Add(1)
	return err
}

// run reads and counts until ctx ends or the connection fails. It reuses
// buf for every read and never looks into the media.
func (p *player) run(ctx context.Context, buf []byte) {
	p.loop(ctx, func() error {
		n, err := p.br.Read(buf)
		if n > 0 {
			p.bytes.Add(uint64(n))
			if seq := uint32(p.bc.Count()); p.ackWindow != 0 && seq-p.lastAck >= p.ackWindow/2 {
				p.lastAck = seq
				if werr := p.writeAck(seq); werr != nil {
					err = werr
				}
			}
		}
		return err
	})
}

// runFrames reads whole messages until ctx ends or the connection fails,
// counting video messages and the bytes read; the message reader sends
// the acknowledgements. With pause > 0 it waits that long each time its
// input buffer is drained, so one read takes what arrived meanwhile.
func (p *player) runFrames(ctx context.Context, pause time.Duration) {
	base := p.bc.Count() - uint64(p.br.Buffered())
	p.loop(ctx, func() error {
		msg, err := p.r.Read()
		p.bytes.Store(p.bc.Count() - uint64(p.br.Buffered()) - base)
		if err != nil {
			return err
		}
		switch {
		case msg.Type == msgVideo:
			p.frames.Add(1)
		case msg.Type == msgSetChunkSize && len(msg.Body) >= 4:
			if err := p.r.SetChunkSize(be32(msg.Body) & 0x7fffffff); err != nil {
				return err
			}
		}
		if pause > 0 && p.br.Buffered() == 0 && !benchutil.Sleep(ctx, pause) {
			return ctx.Err()
		}
		return nil
	})
}

// loop calls read until it fails or ctx ends (which makes the socket's
// reads fail), then records how the connection ended: read's error
// unless ctx ended it.
func (p *player) loop(ctx context.Context, read func() error) {
	stop := context.AfterFunc(ctx, func() { p.nc.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		err := read()
		if err == nil {
			continue
		}
		if ctx.Err() == nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("server closed the connection")
			}
			p.err.Store(&err)
		}
		p.done.Store(true)
		return
	}
}
