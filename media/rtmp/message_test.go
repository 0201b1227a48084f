package rtmp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// TestMessageConnRead: the shared message layer answers pings, follows
// the peer's chunk size and refuses bad control messages as a
// *ProtocolError, while the connection ending stays a plain error.
func TestMessageConnRead(t *testing.T) {
	big := bytes.Repeat([]byte{0x17}, 5000)
	cases := []struct {
		name     string
		peer     func(s *script) *script
		wantBody []byte // the message Read returns; nil = an error
		wantPong bool   // a ping response was written back
		protoErr bool   // the error is a *ProtocolError
	}{
		{"ping, then media", func(s *script) *script {
			return s.msg(2, msgUserControl, 0, 0, []byte{0, EventPingRequest, 1, 2, 3, 4}).msg(6, msgVideo, 0, 1, []byte{0x17, 1})
		}, []byte{0x17, 1}, true, false},
		{"larger chunk size, then a large message", func(s *script) *script {
			return s.chunkSize(4096).msg(6, msgVideo, 0, 1, big)
		}, big, false, false},
		{"abort and window size are absorbed", func(s *script) *script {
			return s.msg(2, msgAbort, 0, 0, be32(6)).msg(2, msgWindowAckSize, 0, 0, be32(1<<20)).msg(4, msgAudio, 0, 1, []byte{0xaf, 1})
		}, []byte{0xaf, 1}, false, false},
		{"chunk size out of range", func(s *script) *script { return s.chunkSize(maxChunkSize + 1) }, nil, false, true},
		{"short chunk size message", func(s *script) *script { return s.msg(2, msgSetChunkSize, 0, 0, []byte{0, 1}) }, nil, false, true},
		{"the peer hangs up", func(s *script) *script { return s }, nil, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			local, peer := net.Pipe()
			defer local.Close()
			local.SetDeadline(time.Now().Add(5 * time.Second))
			peer.SetDeadline(time.Now().Add(5 * time.Second))
			mc := NewMessageConn(bytecounter.NewReadWriter(local))
			written := make(chan []byte, 1)
			go func() {
				peer.Write(tc.peer(newScript()).bytes())
				var got bytes.Buffer
				if tc.wantPong {
					b := make([]byte, 64)
					n, _ := peer.Read(b)
					got.Write(b[:n])
				}
				peer.Close()
				written <- got.Bytes()
			}()
			msg, err := mc.Read()
			var pe *ProtocolError
			switch {
			case tc.wantBody != nil && err != nil:
				t.Fatalf("Read: %v", err)
			case tc.wantBody != nil && !bytes.Equal(msg.Body, tc.wantBody):
				t.Errorf("Read body = % x..., want % x...", head(msg.Body), head(tc.wantBody))
			case tc.wantBody == nil && err == nil:
				t.Fatalf("Read returned a message of type %d, want an error", msg.Type)
			case tc.wantBody == nil && errors.As(err, &pe) != tc.protoErr:
				t.Errorf("Read error %v (%T): ProtocolError = %v, want %v", err, err, !tc.protoErr, tc.protoErr)
			case tc.wantBody == nil && !tc.protoErr && !errors.Is(err, io.EOF):
				t.Errorf("Read error %v, want EOF", err)
			}
			if tc.wantBody != nil {
				local.Close()
			}
			got := <-written
			if tc.wantPong {
				want := newScript().msg(2, msgUserControl, 0, 0, []byte{0, EventPingResponse, 1, 2, 3, 4}).bytes()
				if !bytes.Equal(got, want) {
					t.Errorf("answer to the ping = % x, want % x", got, want)
				}
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// TestControlMessages: the builders encode what the spec says.
func TestControlMessages(t *testing.T) {
	cases := []struct {
		name string
		msg  *rawmessage.Message
		typ  uint8
		body []byte
	}{
		{"set chunk size", SetChunkSize(4096), msgSetChunkSize, []byte{0, 0, 0x10, 0}},
		{"window ack size", WindowAckSize(2500000), msgWindowAckSize, []byte{0, 0x26, 0x25, 0xa0}},
		{"set peer bandwidth", SetPeerBandwidth(2500000, 2), msgSetPeerBandwidth, []byte{0, 0x26, 0x25, 0xa0, 2}},
		{"ack", Ack(0x01020304), msgAck, []byte{1, 2, 3, 4}},
		{"stream begin", UserControl(EventStreamBegin, 1), msgUserControl, []byte{0, 0, 0, 0, 0, 1}},
		{"set buffer length", UserControl(EventSetBufferLength, 1, 3000), msgUserControl, []byte{0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.msg.ChunkStreamID != 2 || tc.msg.MessageStreamID != 0 || tc.msg.Type != tc.typ || !bytes.Equal(tc.msg.Body, tc.body) {
				t.Errorf("got csid %d msid %d type %d body % x, want csid 2 msid 0 type %d body % x",
					tc.msg.ChunkStreamID, tc.msg.MessageStreamID, tc.msg.Type, tc.msg.Body, tc.typ, tc.body)
			}
		})
	}
	t.Run("command round trip", func(t *testing.T) {
		msg, err := CommandMessage(3, 1, "play", 4, nil, "live/x", float64(-2000))
		if err != nil {
			t.Fatal(err)
		}
		cmd, ok, err := DecodeCommand(msg)
		if err != nil || !ok {
			t.Fatalf("DecodeCommand: ok %v, %v", ok, err)
		}
		if cmd.Name != "play" || cmd.ID != 4 || len(cmd.Args) != 3 || cmd.Args[1] != "live/x" {
			t.Errorf("decoded %+v", cmd)
		}
		if _, ok, err := DecodeCommand(SetChunkSize(128)); ok || err != nil {
			t.Errorf("a control message decoded as a command: ok %v, %v", ok, err)
		}
	})
}

// TestMessageStreamIDByteOrder: the message stream id of a type-0 chunk
// header is little-endian on the wire (RTMP 1.0, 5.3.1.2.1), both in what
// MessageConn writes and in how it reads a peer's. The bytes are built and
// checked here by hand, not with the chunk library MessageConn uses.
func TestMessageStreamIDByteOrder(t *testing.T) {
	cases := []struct {
		name string
		id   uint32
		wire [4]byte
	}{
		{"stream 0", 0, [4]byte{0, 0, 0, 0}},
		{"stream 1", 1, [4]byte{1, 0, 0, 0}},
		{"a large id", 0x01020304, [4]byte{4, 3, 2, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name+" written", func(t *testing.T) {
			var out bytes.Buffer
			mc := NewMessageConn(bytecounter.NewReadWriter(struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(nil), &out}))
			if err := mc.WriteCommand(5, tc.id, "onStatus", 0, nil, nil); err != nil {
				t.Fatal(err)
			}
			b := out.Bytes()
			// basic header (csid 5, type 0), timestamp, length, type, msid
			if len(b) < 12 || b[0] != 5 || b[7] != msgCommandAMF0 {
				t.Fatalf("not a type-0 command chunk on csid 5: % x", head(b))
			}
			if got := [4]byte(b[8:12]); got != tc.wire {
				t.Errorf("message stream id on the wire = % x, want % x", got, tc.wire)
			}
		})
		t.Run(tc.name+" read", func(t *testing.T) {
			body := []byte{0x02, 0, 4, 'p', 'l', 'a', 'y', 0, 0, 0, 0, 0, 0, 0, 0, 0} // "play", 0
			in := []byte{3, 0, 0, 0, 0, 0, byte(len(body)), msgCommandAMF0}
			in = append(append(in, tc.wire[:]...), body...)
			mc := NewMessageConn(bytecounter.NewReadWriter(struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(in), io.Discard}))
			msg, err := mc.Read()
			if err != nil {
				t.Fatal(err)
			}
			if msg.MessageStreamID != tc.id {
				t.Errorf("MessageStreamID = %#x, want %#x", msg.MessageStreamID, tc.id)
			}
			if cmd, ok, err := DecodeCommand(msg); !ok || err != nil || cmd.Name != "play" {
				t.Errorf("decoded %+v, ok %v, %v", cmd, ok, err)
			}
		})
	}
}

// TestMessageConnWriteChunks: what MessageConn writes, read back by
// gortmplib's chunk reader, is the message it was given, for a body
// split into several chunks at the announced chunk size, an extended
// timestamp; a chunk stream id of 64 or more takes the two-byte basic
// header (which gortmplib's reader does not read, so it is checked by
// its bytes).
func TestMessageConnWriteChunks(t *testing.T) {
	var out bytes.Buffer
	mc := NewMessageConn(bytecounter.NewReadWriter(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(nil), &out}))
	if err := mc.SetWriteChunkSize(4096); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 10000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	msgs := []*rawmessage.Message{
		{ChunkStreamID: 6, Type: msgVideo, MessageStreamID: 1, Timestamp: 40 * time.Millisecond, Body: body},
		{ChunkStreamID: 5, Type: msgAudio, MessageStreamID: 1, Timestamp: 0x1000000 * time.Millisecond, Body: body[:5000]},
		{ChunkStreamID: 4, Type: msgAudio, MessageStreamID: 1, Timestamp: 80 * time.Millisecond, Body: body[:4096]},
	}
	for _, m := range msgs {
		if err := mc.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	rd := NewMessageConn(bytecounter.NewReadWriter(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(out.Bytes()), io.Discard}))
	for i, want := range msgs {
		got, err := rd.Read()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if got.ChunkStreamID != want.ChunkStreamID || got.Type != want.Type || got.MessageStreamID != want.MessageStreamID ||
			got.Timestamp != want.Timestamp || !bytes.Equal(got.Body, want.Body) {
			t.Errorf("message %d: got csid %d type %d msid %d ts %s %d bytes, want csid %d type %d msid %d ts %s %d bytes",
				i, got.ChunkStreamID, got.Type, got.MessageStreamID, got.Timestamp, len(got.Body),
				want.ChunkStreamID, want.Type, want.MessageStreamID, want.Timestamp, len(want.Body))
		}
	}
	out.Reset()
	if err := mc.Write(&rawmessage.Message{ChunkStreamID: 70, Type: msgAudio, Body: body[:10]}); err != nil {
		t.Fatal(err)
	}
	if b := out.Bytes(); len(b) != 2+11+10 || b[0] != 0 || b[1] != 70-64 {
		t.Errorf("csid 70: % x, want a two-byte basic header 00 06, an 11-byte type-0 header and the body", head(b))
	}
}
