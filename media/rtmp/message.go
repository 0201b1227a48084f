package rtmp

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
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

// User control events (RTMP 1.0, 7.1.7).
const (
	EventStreamBegin     = 0
	EventStreamEOF       = 1
	EventSetBufferLength = 3
	EventPingRequest     = 6
	EventPingResponse    = 7
)

// csidControl is the chunk stream protocol control messages travel on.
const csidControl = 2

// maxChunkSize caps what a peer may announce with Set Chunk Size.
const maxChunkSize = 1 << 20

// ProtocolError is a peer's breach of the chunk stream or of the protocol
// control messages, as opposed to the connection ending or timing out.
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string { return e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

func protocolError(format string, a ...any) error {
	return &ProtocolError{fmt.Errorf(format, a...)}
}

// MessageConn is the message layer of one RTMP connection after the
// handshake, shared by the server's sessions and the relay's client. It
// answers the protocol control messages the peer sends (chunk size, abort,
// window size, ping) and serializes writes, so that commands, acks and
// media written from several goroutines never interleave their chunks.
// Message stream ids in and out are the real ids; it keeps their byte
// order on the wire as the spec says (see swapMSID).
type MessageConn struct {
	r  *rawmessage.Reader
	mu sync.Mutex // serializes writes
	w  *rawmessage.Writer
}

// NewMessageConn reads and writes messages on a handshaken connection.
func NewMessageConn(bc *bytecounter.ReadWriter) *MessageConn {
	m := &MessageConn{}
	m.r = rawmessage.NewReader(bc, bc.Reader, func(n uint32) error { return m.Write(Ack(n)) })
	m.w = rawmessage.NewWriter(bc, bc.Writer, false)
	return m
}

// ClientHandshake performs the client side of the plain RTMP handshake on
// nc and returns the connection's message layer.
func ClientHandshake(nc io.ReadWriter) (*MessageConn, error) {
	bc := bytecounter.NewReadWriter(nc)
	if _, _, err := handshake.DoClient(bc, false, false); err != nil {
		return nil, err
	}
	return NewMessageConn(bc), nil
}

// Locker returns the write lock, for callers that write already chunked
// bytes to the connection themselves.
func (m *MessageConn) Locker() sync.Locker { return &m.mu }

// Write sends one message.
func (m *MessageConn) Write(msg *rawmessage.Message) error {
	out := *msg
	out.MessageStreamID = swapMSID(msg.MessageStreamID)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w.Write(&out)
}

// swapMSID converts a message stream id between its value and the form
// gortmplib's chunk layer takes and gives. The RTMP spec (5.3.1.2.1) puts
// the message stream id of a type-0 chunk header on the wire
// little-endian, the one field that is; gortmplib v1.0.0 reads and writes
// it big-endian, so stream 1 would go out as 16777216, and GStreamer's
// rtmp2 elements, which match replies by stream id, would wait forever.
// Its coding is a plain byte order, so handing it the id byte-swapped puts
// the spec's bytes on the wire, and swapping what it read gives the id
// the peer meant. It is its own inverse.
func swapMSID(id uint32) uint32 { return bits.ReverseBytes32(id) }

// WriteCommand sends an AMF0 command: name, transaction id, then args.
func (m *MessageConn) WriteCommand(csid byte, msid uint32, name string, id float64, args ...any) error {
	msg, err := CommandMessage(csid, msid, name, id, args...)
	if err != nil {
		return err
	}
	return m.Write(msg)
}

// SetWriteChunkSize announces a chunk size to the peer and sends with it
// from then on.
func (m *MessageConn) SetWriteChunkSize(v uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.w.Write(SetChunkSize(v)); err != nil {
		return err
	}
	m.w.SetChunkSize(v)
	return nil
}

// Read returns the next message that is not a protocol control message.
// A malformed chunk stream or control message is a *ProtocolError; the
// connection ending or timing out is returned as it is.
func (m *MessageConn) Read() (*rawmessage.Message, error) {
	for {
		msg, err := m.r.Read()
		if err != nil {
			var ne net.Error
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
				return nil, err
			}
			return nil, protocolError("bad rtmp chunk stream: %v", err)
		}
		msg.MessageStreamID = swapMSID(msg.MessageStreamID)
		switch msg.Type {
		case msgSetChunkSize:
			if len(msg.Body) < 4 {
				return nil, protocolError("short Set Chunk Size message")
			}
			v := uint32(msg.Body[0]&0x7f)<<24 | uint32(msg.Body[1])<<16 | uint32(msg.Body[2])<<8 | uint32(msg.Body[3])
			if v < 1 || v > maxChunkSize {
				return nil, protocolError("chunk size %d out of range 1..%d", v, maxChunkSize)
			}
			if err := m.r.SetChunkSize(v); err != nil {
				return nil, &ProtocolError{err}
			}
		case msgAbort:
			if len(msg.Body) >= 4 {
				m.r.AbortChunkStream(uint32(msg.Body[3]))
			}
		case msgWindowAckSize:
			if len(msg.Body) >= 4 {
				m.r.SetWindowAckSize(uint32(msg.Body[0])<<24 | uint32(msg.Body[1])<<16 | uint32(msg.Body[2])<<8 | uint32(msg.Body[3]))
			}
		case msgAck, msgSetPeerBandwidth:
		case msgUserControl:
			if len(msg.Body) >= 6 && msg.Body[1] == EventPingRequest {
				if err := m.Write(userControl(EventPingResponse, msg.Body[2:6])); err != nil {
					return nil, err
				}
			}
		default:
			return msg, nil
		}
	}
}

// SetChunkSize is the Set Chunk Size control message.
func SetChunkSize(v uint32) *rawmessage.Message {
	return control(msgSetChunkSize, be32(v))
}

// WindowAckSize is the Window Acknowledgement Size control message.
func WindowAckSize(v uint32) *rawmessage.Message {
	return control(msgWindowAckSize, be32(v))
}

// SetPeerBandwidth is the Set Peer Bandwidth control message; limit is 0
// (hard), 1 (soft) or 2 (dynamic).
func SetPeerBandwidth(v uint32, limit byte) *rawmessage.Message {
	return control(msgSetPeerBandwidth, append(be32(v), limit))
}

// Ack is the Acknowledgement control message for n bytes received.
func Ack(n uint32) *rawmessage.Message {
	return control(msgAck, be32(n))
}

// UserControl is a user control message: an event and its 32-bit
// arguments (a message stream id, a buffer length in ms, a timestamp).
func UserControl(event uint16, args ...uint32) *rawmessage.Message {
	var data []byte
	for _, a := range args {
		data = append(data, be32(a)...)
	}
	return userControl(event, data)
}

func userControl(event uint16, data []byte) *rawmessage.Message {
	return control(msgUserControl, append([]byte{byte(event >> 8), byte(event)}, data...))
}

func control(typ uint8, body []byte) *rawmessage.Message {
	return &rawmessage.Message{ChunkStreamID: csidControl, Type: typ, Body: body}
}

// CommandMessage is an AMF0 command message: name, transaction id, then
// args.
func CommandMessage(csid byte, msid uint32, name string, id float64, args ...any) (*rawmessage.Message, error) {
	body, err := amf0.Data(append([]any{name, id}, args...)).Marshal()
	if err != nil {
		return nil, err
	}
	return &rawmessage.Message{ChunkStreamID: csid, Type: msgCommandAMF0, MessageStreamID: msid, Body: body}, nil
}

// Command is a decoded command message.
type Command struct {
	Name string
	ID   float64
	Args []any
}

// DecodeCommand decodes an AMF0 (or AMF3-wrapped AMF0) command message; ok
// is false for messages that are not commands.
func DecodeCommand(msg *rawmessage.Message) (cmd Command, ok bool, err error) {
	if msg.Type != msgCommandAMF0 && msg.Type != msgCommandAMF3 {
		return Command{}, false, nil
	}
	body := msg.Body
	if msg.Type == msgCommandAMF3 {
		if len(body) == 0 {
			return Command{}, false, fmt.Errorf("empty AMF3 command")
		}
		body = body[1:] // AMF3 commands carry AMF0 after a format byte
	}
	data, err := amf0.Unmarshal(body)
	if err != nil {
		return Command{}, false, fmt.Errorf("bad AMF0 command: %v", err)
	}
	if len(data) < 2 {
		return Command{}, false, fmt.Errorf("bad AMF0 command: %d values", len(data))
	}
	name, isString := data[0].(string)
	if !isString {
		return Command{}, false, fmt.Errorf("bad AMF0 command: name is %T", data[0])
	}
	id, _ := data[1].(float64)
	return Command{Name: name, ID: id, Args: data[2:]}, true, nil
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
