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
