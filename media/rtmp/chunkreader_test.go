package rtmp

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// readAll reads messages from in with a MessageConn until the input ends.
func readAll(t *testing.T, in []byte) []*rawmessage.Message {
	t.Helper()
	mc := NewMessageConn(bytecounter.NewReadWriter(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(in), io.Discard}))
	var got []*rawmessage.Message
	for {
		msg, err := mc.Read()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("Read after %d messages: %v", len(got), err)
		}
		got = append(got, msg)
	}
}

func sameMessage(t *testing.T, i int, got, want *rawmessage.Message) {
	t.Helper()
	if got.ChunkStreamID != want.ChunkStreamID || got.Type != want.Type || got.Timestamp != want.Timestamp ||
		got.MessageStreamID != want.MessageStreamID || !bytes.Equal(got.Body, want.Body) {
		t.Errorf("message %d: csid %d type %d ts %v msid %d body %d bytes % x..., want csid %d type %d ts %v msid %d body %d bytes % x...",
			i, got.ChunkStreamID, got.Type, got.Timestamp, got.MessageStreamID, len(got.Body), head(got.Body),
			want.ChunkStreamID, want.Type, want.Timestamp, want.MessageStreamID, len(want.Body), head(want.Body))
	}
}

// TestChunkReaderGortmplibWriter: what gortmplib's chunk writer (another
// implementation) sends, with its header compression (fmt 1 for a new
// length, fmt 2 for a new delta, fmt 3 for the same delta), several chunk
// streams, chunk sizes 128 and 4096, bodies larger than the reader
// allocates at once (eagerBody), empty bodies and extended timestamps, is read back
// as the messages it was given.
func TestChunkReaderGortmplibWriter(t *testing.T) {
	body := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	var msgs []*rawmessage.Message
	add := func(csid byte, typ uint8, ts, msid, n int) {
		msgs = append(msgs, &rawmessage.Message{ChunkStreamID: csid, Type: typ, Timestamp: ms(ts), MessageStreamID: uint32(msid), Body: body(n, byte(len(msgs)))})
	}
	for _, chunk := range []uint32{128, 4096} {
		t.Run("chunk size "+strconv.Itoa(int(chunk)), func(t *testing.T) {
			msgs = msgs[:0]
			add(6, msgVideo, 0, 1, 40)        // fmt 0
			add(4, msgAudio, 0, 1, 300)       // another stream, fmt 0
			add(6, msgVideo, 33, 1, 5000)     // fmt 1: new length
			add(6, msgVideo, 66, 1, 5000)     // fmt 2: new delta, same length
			add(6, msgVideo, 99, 1, 5000)     // fmt 3: same delta
			add(4, msgAudio, 21, 1, 300)      // fmt 2
			add(4, msgAudio, 42, 1, 300)      // fmt 3
			add(6, msgVideo, 132, 1, 300<<10) // fmt 1, a body larger than eagerBody
			add(6, msgVideo, 165, 1, 0)       // fmt 1, empty
			add(5, msgDataAMF0, 0, 0, 10)     // msid 0
			add(6, msgVideo, 0x1000000, 1, 5000)
			add(6, msgVideo, 0x1000021, 1, 5000)
			add(6, msgVideo, 0x1000042, 1, 5000)         // fmt 3 with extended timestamps
			add(7, msgVideo, 0x1000000, 0x01020304, 200) // fmt 0 extended, a large msid
			var out bytes.Buffer
			w := rawmessage.NewWriter(&out, bytecounter.NewWriter(io.Discard), false)
			w.SetChunkSize(chunk)
			var in []byte
			if chunk != 128 {
				in = newScript().chunkSize(chunk).bytes()
			}
			for _, m := range msgs {
				wire := *m
				wire.MessageStreamID = swapMSID(m.MessageStreamID) // gortmplib writes it big-endian
				if err := w.Write(&wire); err != nil {
					t.Fatal(err)
				}
			}
			got := readAll(t, append(in, out.Bytes()...))
			if len(got) != len(msgs) {
				t.Fatalf("read %d messages, want %d", len(got), len(msgs))
			}
			for i := range msgs {
				sameMessage(t, i, got[i], msgs[i])
			}
		})
	}
}

// TestChunkReaderInterleaved: chunks of two messages on different chunk
// streams interleave (the spec allows it; gortmplib's writer never does
// it), a chunk stream id of 64 or more takes the two-byte basic header,
// and an Abort drops the message being assembled.
func TestChunkReaderInterleaved(t *testing.T) {
	video := bytes.Repeat([]byte{0x27, 1, 2}, 100) // 300 bytes: 3 chunks of 128
	audio := []byte{0xaf, 1, 9, 9}
	fmt0 := func(basic []byte, ts, n int, typ byte, msid uint32) []byte {
		b := append([]byte{}, basic...)
		b = append(b, byte(ts>>16), byte(ts>>8), byte(ts), byte(n>>16), byte(n>>8), byte(n), typ)
		return append(b, byte(msid), byte(msid>>8), byte(msid>>16), byte(msid>>24))
	}
	var in []byte
	in = append(fmt0([]byte{6}, 40, len(video), msgVideo, 1), video[:128]...)
	in = append(append(in, fmt0([]byte{0, 300 - 64}, 41, len(audio), msgAudio, 1)...), audio...) // csid 300: 2-byte form
	in = append(append(in, 0xc6), video[128:256]...)                                             // fmt 3 on csid 6
	in = append(append(in, fmt0([]byte{0, 0x2c}, 42, len(audio), msgAudio, 1)...), audio...)     // csid 64+0x2c
	in = append(append(in, 0xc6), video[256:]...)
	// a message started, aborted, then one sent whole on the same stream
	in = append(append(in, fmt0([]byte{8}, 50, 200, msgVideo, 1)...), video[:128]...)
	in = append(in, newScript().msg(2, msgAbort, 0, 0, be32(8)).bytes()...)
	in = append(append(in, fmt0([]byte{8}, 60, 4, msgVideo, 1)...), 0x17, 1, 0, 0)

	got := readAll(t, in)
	want := []*rawmessage.Message{
		{ChunkStreamID: 300 - 256, Type: msgAudio, Timestamp: 41 * time.Millisecond, MessageStreamID: 1, Body: audio},
		{ChunkStreamID: 64 + 0x2c, Type: msgAudio, Timestamp: 42 * time.Millisecond, MessageStreamID: 1, Body: audio},
		{ChunkStreamID: 6, Type: msgVideo, Timestamp: 40 * time.Millisecond, MessageStreamID: 1, Body: video},
		{ChunkStreamID: 8, Type: msgVideo, Timestamp: 60 * time.Millisecond, MessageStreamID: 1, Body: []byte{0x17, 1, 0, 0}},
	}
	if len(got) != len(want) {
		t.Fatalf("read %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		sameMessage(t, i, got[i], want[i])
	}
}

// BenchmarkChunkRead: reading a publisher's stream, one op = one second
// of a ~3 Mbit/s stream at chunk size 4096 (30 video frames of 12 KiB,
// one of them a 60 KiB keyframe, 47 audio frames of 372 bytes), with the
// reader MessageConn uses and with gortmplib's (what it used before).
func BenchmarkChunkRead(b *testing.B) {
	var out bytes.Buffer
	out.Write(newScript().chunkSize(4096).bytes())
	w := rawmessage.NewWriter(&out, bytecounter.NewWriter(io.Discard), false)
	w.SetChunkSize(4096)
	video, key, audio := make([]byte, 12<<10), make([]byte, 60<<10), make([]byte, 372)
	for i := 0; i < 47; i++ {
		if i < 30 {
			body := video
			if i == 0 {
				body = key
			}
			w.Write(&rawmessage.Message{ChunkStreamID: 6, Type: msgVideo, Timestamp: time.Duration(i*33) * time.Millisecond, MessageStreamID: swapMSID(1), Body: body})
		}
		w.Write(&rawmessage.Message{ChunkStreamID: 4, Type: msgAudio, Timestamp: time.Duration(i*21) * time.Millisecond, MessageStreamID: swapMSID(1), Body: audio})
	}
	in := out.Bytes()
	run := func(b *testing.B, want int, read func(io.Reader) func() (*rawmessage.Message, error)) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			next := read(bytes.NewReader(in))
			for n := 0; ; n++ {
				_, err := next()
				if err == io.EOF {
					if n != want {
						b.Fatalf("%d messages", n)
					}
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("relaymesh", func(b *testing.B) {
		run(b, 77, func(r io.Reader) func() (*rawmessage.Message, error) {
			return NewMessageConn(bytecounter.NewReadWriter(struct {
				io.Reader
				io.Writer
			}{r, io.Discard})).Read
		})
	})
	b.Run("gortmplib", func(b *testing.B) {
		run(b, 78, func(r io.Reader) func() (*rawmessage.Message, error) { // the Set Chunk Size too
			bc := bytecounter.NewReader(r)
			rd := rawmessage.NewReader(bufio.NewReaderSize(bc, 4096), bc, func(uint32) error { return nil })
			return func() (*rawmessage.Message, error) {
				msg, err := rd.Read()
				if err == nil && msg.Type == msgSetChunkSize {
					rd.SetChunkSize(4096)
				}
				return msg, err
			}
		})
	})
}
