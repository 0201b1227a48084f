package rtmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

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
// Message stream ids in and out are the real ids, little-endian on the
// wire as the spec says (5.3.1.2.1).
type MessageConn struct {
	r  *chunkReader
	mu sync.Mutex // serializes writes
	// the writer is ours, not gortmplib's (which keeps a 4 KiB bufio
	// buffer per connection, a player's biggest but one): each message
	// is chunked into wbuf and written at once
	w         io.Writer
	chunkSize int
	wbuf      []byte

	beforeRead func() // the reading goroutine's own
}

// SetBeforeRead has f run before each read of the socket, from the
// goroutine that calls Read: a publisher flushes what it wrote from the
// input buffered so far (media.Publisher.Flush). nil clears it.
func (m *MessageConn) SetBeforeRead(f func()) { m.beforeRead = f }

// keepWriteBuf is the largest write buffer a connection keeps between
// messages; a larger one (a relay's keyframe) is let go after its write.
const keepWriteBuf = 16 << 10

// NewMessageConn reads and writes messages on a handshaken connection.
func NewMessageConn(bc *bytecounter.ReadWriter) *MessageConn { return newMessageConn(bc, nil) }

// newMessageConn is NewMessageConn on bc, which counts the bytes of nc:
// when nc is a connection with a file descriptor, the reader reads its
// socket itself with a buffer it holds only while there is input (see
// input).
func newMessageConn(bc *bytecounter.ReadWriter, nc any) *MessageConn {
	m := &MessageConn{}
	m.r = newChunkReader(newInput(m, bc.Reader, nc), bc.Reader, func(n uint32) error { return m.Write(Ack(n)) })
	m.w, m.chunkSize = bc.Writer, 128
	return m
}

// ClientHandshake performs the client side of the plain RTMP handshake on
// nc and returns the connection's message layer.
func ClientHandshake(nc io.ReadWriter) (*MessageConn, error) {
	bc := bytecounter.NewReadWriter(nc)
	if _, _, err := handshake.DoClient(bc, false, false); err != nil {
		return nil, err
	}
	return newMessageConn(bc, nc), nil
}

// Locker returns the write lock, for callers that write already chunked
// bytes to the connection themselves.
func (m *MessageConn) Locker() sync.Locker { return &m.mu }

// Write sends one message.
func (m *MessageConn) Write(msg *rawmessage.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writeLocked(msg)
}

// writeLocked chunks msg into m.wbuf, a type-0 chunk then type-3
// continuations of the write chunk size, and writes it with one call.
func (m *MessageConn) writeLocked(msg *rawmessage.Message) error {
	ts := uint32(msg.Timestamp / time.Millisecond)
	body := msg.Body
	b := m.wbuf[:0]
	b = appendBasicHeader(b, 0, msg.ChunkStreamID)
	n := len(body)
	b = append(b, byte(min(ts, 0xFFFFFF)>>16), byte(min(ts, 0xFFFFFF)>>8), byte(min(ts, 0xFFFFFF)),
		byte(n>>16), byte(n>>8), byte(n), msg.Type)
	b = binary.LittleEndian.AppendUint32(b, msg.MessageStreamID) // the one little-endian field
	if ts >= 0xFFFFFF {
		b = binary.BigEndian.AppendUint32(b, ts)
	}
	for off := 0; ; {
		end := min(off+m.chunkSize, n)
		b = append(b, body[off:end]...)
		off = end
		if off >= n {
			break
		}
		b = appendBasicHeader(b, 3, msg.ChunkStreamID)
		if ts >= 0xFFFFFF {
			b = binary.BigEndian.AppendUint32(b, ts)
		}
	}
	_, err := m.w.Write(b)
	if cap(b) <= keepWriteBuf {
		m.wbuf = b[:0]
	} else {
		m.wbuf = nil
	}
	return err
}

// appendBasicHeader appends a chunk basic header of format 0-3.
func appendBasicHeader(b []byte, format, csid byte) []byte {
	if csid >= 64 {
		return append(b, format<<6, csid-64)
	}
	return append(b, format<<6|csid)
}

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
	if err := m.writeLocked(SetChunkSize(v)); err != nil {
		return err
	}
	m.chunkSize = int(v)
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
