package rtmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// maxBodySize caps an RTMP message's announced length.
const maxBodySize = 10 << 20

// eagerBody is the largest body allocated whole when its first chunk
// arrives; a larger one grows with what arrives, so a peer announcing
// large messages it never sends cannot make us hold their size: with
// chunk stream ids up to maxCSID that is at most ~20 MB per connection
// (gortmplib's reader allowed 62 streams of a chunk of up to 1 MiB).
const eagerBody = 64 << 10

// maxCSID is the largest chunk stream id read (the two-byte basic
// header's); the three-byte form is refused.
const maxCSID = 319

// chunkReader reassembles RTMP messages from the chunk stream (RTMP 1.0,
// 5.3). Each message body is allocated once, at its size, and every chunk
// is read into it straight from the connection's buffer: gortmplib's
// reader allocated each chunk, then the joined body, then a copy of the
// message (three times a publisher's bytes in garbage, a fixed cost of
// every stream).
type chunkReader struct {
	br        byteReader
	bc        *bytecounter.Reader
	onAck     func(uint32) error
	chunkSize uint32
	ackWindow uint32
	lastAck   uint32
	streams   map[uint32]*chunkStream
	hdr       [16]byte
}

// chunkStream is what one chunk stream id remembers between chunks: the
// last message header (fmt 1-3 chunks omit parts of it) and the message
// being assembled.
type chunkStream struct {
	started  bool // a fmt 0 chunk came: the header fields are known
	ts       uint32
	delta    uint32
	length   uint32
	typ      uint8
	msid     uint32
	extended bool // the last header carried an extended timestamp

	body []byte // the message being assembled; nil between messages
	recv uint32
}

// byteReader is the chunk reader's buffered input.
type byteReader interface {
	io.Reader
	io.ByteReader
}

func newChunkReader(br byteReader, bc *bytecounter.Reader, onAck func(uint32) error) *chunkReader {
	return &chunkReader{br: br, bc: bc, onAck: onAck, chunkSize: 128, streams: make(map[uint32]*chunkStream)}
}

func (r *chunkReader) SetChunkSize(v uint32) error {
	if v > maxBodySize {
		return fmt.Errorf("chunk size (%d) exceeds maximum (%d)", v, maxBodySize)
	}
	r.chunkSize = v
	return nil
}

func (r *chunkReader) SetWindowAckSize(v uint32) { r.ackWindow = v }

// AbortChunkStream drops the message being assembled on csid.
func (r *chunkReader) AbortChunkStream(csid uint32) {
	if cs := r.streams[csid]; cs != nil {
		cs.body, cs.recv = nil, 0
	}
}

func (r *chunkReader) read(n int) ([]byte, error) {
	b := r.hdr[:n]
	_, err := io.ReadFull(r.br, b)
	return b, err
}

func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// Read returns the next complete message. The message stream id is the
// real one (the wire's little-endian field decoded as such).
func (r *chunkReader) Read() (*rawmessage.Message, error) {
	for {
		b0, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		format, csid := b0>>6, uint32(b0&0x3f)
		switch csid {
		case 0:
			b, err := r.read(1)
			if err != nil {
				return nil, err
			}
			csid = 64 + uint32(b[0])
		case 1:
			return nil, fmt.Errorf("chunk stream ids above %d (3-byte basic header) are not supported", maxCSID)
		}
		cs := r.streams[csid]
		if cs == nil {
			cs = &chunkStream{}
			r.streams[csid] = cs
		}
		if format != 3 && cs.body != nil {
			return nil, fmt.Errorf("received type %d chunk but expected type 3 chunk", format)
		}
		newMsg := cs.body == nil
		switch format {
		case 0:
			b, err := r.read(11)
			if err != nil {
				return nil, err
			}
			cs.ts, cs.delta = be24(b[0:3]), 0
			cs.length, cs.typ = be24(b[3:6]), b[6]
			cs.msid = binary.LittleEndian.Uint32(b[7:11])
			cs.extended = cs.ts == 0xFFFFFF
			if cs.extended {
				if b, err = r.read(4); err != nil {
					return nil, err
				}
				cs.ts = binary.BigEndian.Uint32(b)
			}
			cs.started = true
		case 1, 2:
			if !cs.started {
				return nil, fmt.Errorf("received type %d chunk without previous chunk", format)
			}
			n := 3
			if format == 1 {
				n = 7
			}
			b, err := r.read(n)
			if err != nil {
				return nil, err
			}
			cs.delta = be24(b[0:3])
			if format == 1 {
				cs.length, cs.typ = be24(b[3:6]), b[6]
			}
			cs.extended = cs.delta == 0xFFFFFF
			if cs.extended {
				if b, err = r.read(4); err != nil {
					return nil, err
				}
				cs.delta = binary.BigEndian.Uint32(b)
			}
			cs.ts += cs.delta
		default: // 3: the header of the last chunk of this stream
			if !cs.started {
				return nil, errors.New("received type 3 chunk without previous chunk")
			}
			if cs.extended {
				if _, err := r.read(4); err != nil {
					return nil, err
				}
			}
			if newMsg {
				cs.ts += cs.delta
			}
		}
		if newMsg {
			if cs.length > maxBodySize {
				return nil, fmt.Errorf("body size (%d) exceeds maximum (%d)", cs.length, maxBodySize)
			}
			cs.body = make([]byte, 0, min(cs.length, eagerBody))
			cs.recv = 0
		}
		n := min(cs.length-cs.recv, r.chunkSize)
		if end := int(cs.recv + n); end > cap(cs.body) {
			grown := make([]byte, cs.recv, min(int(cs.length), max(end, 2*cap(cs.body))))
			copy(grown, cs.body)
			cs.body = grown
		}
		chunk := cs.body[cs.recv : cs.recv+n]
		if _, err := io.ReadFull(r.br, chunk); err != nil {
			return nil, err
		}
		cs.recv += n
		cs.body = cs.body[:cs.recv]
		if err := r.ack(); err != nil {
			return nil, err
		}
		if cs.recv < cs.length {
			continue
		}
		msg := &rawmessage.Message{
			ChunkStreamID:   byte(csid), // ids of 256 and more are not ours to answer on
			Timestamp:       time.Duration(cs.ts) * time.Millisecond,
			Type:            cs.typ,
			MessageStreamID: cs.msid,
			Body:            cs.body,
		}
		cs.body, cs.recv = nil, 0
		return msg, nil
	}
}

// ack sends an Acknowledgement each time another window of bytes came in.
func (r *chunkReader) ack() error {
	if r.ackWindow == 0 {
		return nil
	}
	count := uint32(r.bc.Count())
	if count-r.lastAck > r.ackWindow {
		if err := r.onAck(count); err != nil {
			return err
		}
		r.lastAck = count // one ack however many windows one read brought
	}
	return nil
}
