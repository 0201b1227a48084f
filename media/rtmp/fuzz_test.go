package rtmp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media"
)

// script builds what an RTMP client sends after the handshake.
type script struct {
	buf bytes.Buffer
	w   *rawmessage.Writer
}

func newScript() *script {
	s := &script{}
	s.w = rawmessage.NewWriter(&s.buf, bytecounter.NewWriter(&s.buf), false)
	return s
}

func (s *script) msg(csid byte, typ uint8, ts time.Duration, msid uint32, body []byte) *script {
	// message stream ids in the spec's byte order, as clients send them
	if err := s.w.Write(&rawmessage.Message{ChunkStreamID: csid, Type: typ, Timestamp: ts, MessageStreamID: swapMSID(msid), Body: body}); err != nil {
		panic(err)
	}
	return s
}

func (s *script) cmd(msid uint32, args ...any) *script {
	b, err := amf0.Data(args).Marshal()
	if err != nil {
		panic(err)
	}
	return s.msg(3, msgCommandAMF0, 0, msid, b)
}

func (s *script) connect(app string) *script {
	return s.cmd(0, "connect", float64(1), amf0.Object{{Key: "app", Value: app}, {Key: "tcUrl", Value: "rtmp://127.0.0.1/" + app}})
}

func (s *script) chunkSize(v uint32) *script {
	s.msg(2, msgSetChunkSize, 0, 0, be32(v))
	if v >= 1 && v <= maxChunkSize {
		s.w.SetChunkSize(v)
	}
	return s
}

func (s *script) bytes() []byte { return append([]byte(nil), s.buf.Bytes()...) }

// fuzzSeeds are client sessions that reach every command and the publish
// loop: valid ones, and ones the server must refuse.
func fuzzSeeds() [][]byte {
	meta, _ := amf0.Data{"@setDataFrame", "onMetaData", amf0.ECMAArray{{Key: "width", Value: float64(640)}}}.Marshal()
	vhdr := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4, 0x68, 0xee, 0x3c, 0x80}
	key := append([]byte{0x17, 1, 0, 0, 0, 0, 0, 0, 5, 0x65}, make([]byte, 300)...)
	publish := func() *script {
		return newScript().connect("live").
			cmd(0, "releaseStream", float64(2), nil, "s").
			cmd(0, "FCPublish", float64(3), nil, "s").
			cmd(0, "createStream", float64(4), nil).
			cmd(1, "publish", float64(5), nil, "s", "live")
	}
	return [][]byte{
		nil,
		newScript().connect("live").bytes(),
		publish().
			msg(4, msgDataAMF0, 0, 1, meta).
			msg(6, msgVideo, 0, 1, vhdr).
			msg(4, msgAudio, 0, 1, []byte{0xaf, 0, 0x11, 0x90}).
			msg(6, msgVideo, 40*time.Millisecond, 1, key).
			msg(4, msgAudio, 45*time.Millisecond, 1, []byte{0xaf, 1, 0x21}).
			msg(6, msgVideo, 0xFFFFFFFF*time.Millisecond, 1, key).
			cmd(1, "FCUnpublish", float64(6), nil, "s").
			cmd(1, "deleteStream", float64(7), nil, float64(1)).bytes(),
		publish().chunkSize(60000).msg(6, msgVideo, 0, 1, key).msg(6, msgVideo, 0, 1, []byte{0x17}).bytes(),
		publish().msg(6, msgVideo, 0, 1, []byte{0x91, 'h', 'v', 'c', '1', 0}).bytes(),
		publish().msg(4, msgAudio, 0, 1, []byte{0xaf}).bytes(),
		newScript().connect("live").cmd(0, "createStream", float64(2), nil).cmd(1, "play", float64(3), nil, "missing").bytes(),
		newScript().connect("live").cmd(1, "play", float64(3), nil, "../x").bytes(),
		newScript().cmd(1, "publish", float64(5), nil, "s").bytes(),
		newScript().chunkSize(0x7fffffff).bytes(),
		newScript().chunkSize(1).connect("live").bytes(),
		newScript().chunkSize(128).msg(2, msgAbort, 0, 0, be32(3)).msg(2, msgWindowAckSize, 0, 0, be32(10)).
			msg(2, msgUserControl, 0, 0, []byte{0, 6, 1, 2, 3, 4}).connect("live").bytes(),
		newScript().msg(3, msgCommandAMF3, 0, 0, append([]byte{0}, newScript().connect("live").bytes()[12:]...)).bytes(),
		newScript().msg(3, msgCommandAMF0, 0, 0, []byte{0x05}).bytes(),
		newScript().msg(3, msgCommandAMF3, 0, 0, nil).bytes(),
		newScript().cmd(0, "connect", float64(1), "not an object").bytes(),
		newScript().cmd(0, "connect", float64(1), amf0.Object{{Key: "app", Value: "/"}}).bytes(),
		// a header promising 8 MB, then nothing
		{0x03, 0, 0, 0, 0x80, 0, 0, msgCommandAMF0, 0, 0, 0, 0, 0x02, 0, 7},
		{0x00, 0x00},
		{0xc3},
	}
}

// FuzzRTMPServerConn feeds arbitrary bytes after a valid handshake into a
// real server connection: the server must not panic and must close the
// connection by itself within its timeouts, whether or not the client
// hangs up.
func FuzzRTMPServerConn(f *testing.F) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hcfg := media.DefaultHubConfig()
	hcfg.ReconnectGrace = 0
	hub := media.NewHub(hcfg, log)
	srv, err := New(Config{
		Listen: "127.0.0.1:0",
		// short, so inputs that leave the client connected cost little
		HandshakeTimeout: 150 * time.Millisecond,
		ReadTimeout:      100 * time.Millisecond,
		WriteTimeout:     100 * time.Millisecond,
	}, hub, log)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close(); hub.Close() })
	for _, s := range fuzzSeeds() {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, hangUp bool) {
		cli, sc := net.Pipe()
		defer cli.Close()
		c := &conn{srv: srv, nc: sc, log: srv.log}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.serve(context.Background())
		}()
		cli.SetDeadline(time.Now().Add(5 * time.Second))
		drained := make(chan struct{})
		if _, _, err := handshake.DoClient(cli, false, false); err != nil {
			// a loaded machine can miss the short handshake deadline:
			// the server must still close, which is checked below
			data = nil
		}
		go func() {
			defer close(drained)
			io.Copy(io.Discard, cli)
		}()
		cli.Write(data) // fails when the server has already hung up: fine
		if hangUp {
			cli.Close()
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("server still holds the connection 10 s after the input (hang up %v)", hangUp)
		}
		// the server closed its side: our reads end
		select {
		case <-drained:
		case <-time.After(5 * time.Second):
			t.Fatalf("server returned without closing the connection")
		}
	})
}

// swapMSID converts a message stream id between its value and the form
// gortmplib's chunk writer takes: gortmplib v1.0.0 writes the type-0
// header's message stream id big-endian, where the spec (5.3.1.2.1) has
// it little-endian, so the fuzz seeds swap it to put the real id on the
// wire. It is its own inverse.
func swapMSID(id uint32) uint32 { return bits.ReverseBytes32(id) }
