package unit_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/relaymesh/relaymesh/media/unit"
)

// metaBody is a synthetic onMetaData body (an empty ECMA array).
var metaBody = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0x08, 0, 0, 0, 0}

func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

type wireCase struct {
	name string
	kind unit.Kind
	ts   uint32
	body []byte
}

func wireCases() []wireCase {
	cs := unit.RTMPChunkSize
	return []wireCase{
		{"empty video", unit.KindVideo, 0, nil},
		{"one byte audio", unit.KindAudio, 20, body(1)},
		{"data", unit.KindData, 0, metaBody},
		{"exactly one chunk", unit.KindVideo, 40, body(cs)},
		{"one chunk and a byte", unit.KindVideo, 80, body(cs + 1)},
		{"three and a half chunks", unit.KindVideo, 120, body(3*cs + cs/2)},
		{"largest 24-bit timestamp", unit.KindAudio, 0xFFFFFE, body(10)},
		{"extended timestamp at 0xFFFFFF", unit.KindVideo, 0xFFFFFF, body(2*cs + 5)},
		{"extended timestamp, several chunks", unit.KindVideo, 0x12345678, body(4*cs + 1)},
		{"extended timestamp, empty body", unit.KindData, 0x80000000, nil},
		{"largest timestamp", unit.KindAudio, 0xFFFFFFFF, body(cs + 3)},
		{"back to a small timestamp", unit.KindVideo, 100, body(cs + 3)},
	}
}

func newReader(t *testing.T, b []byte) *rawmessage.Reader {
	t.Helper()
	br := bytes.NewReader(b)
	r := rawmessage.NewReader(br, bytecounter.NewReader(br), func(uint32) error { return nil })
	if err := r.SetChunkSize(unit.RTMPChunkSize); err != nil {
		t.Fatal(err)
	}
	return r
}
func check(t *testing.T, msg *rawmessage.Message, tc wireCase, msid uint32) {
	t.Helper()
	if msg.Type != uint8(tc.kind) {
		t.Errorf("type = %d, want %d", msg.Type, tc.kind)
	}
	if want := time.Duration(tc.ts) * time.Millisecond; msg.Timestamp != want {
		t.Errorf("timestamp = %v, want %v", msg.Timestamp, want)
	}
	// The RTMP spec stores the message stream id little-endian;
	// gortmplib reads the four bytes big-endian (and writes stream 1
	// as 0x1000000), so it sees the id byte-swapped.
	if got := bits.ReverseBytes32(msg.MessageStreamID); got != msid {
		t.Errorf("message stream id = %d, want %d", got, msid)
	}
	if !bytes.Equal(msg.Body, tc.body) {
		t.Errorf("body differs: %d bytes, want %d", len(msg.Body), len(tc.body))
	}
}

// TestAppendRTMP parses the chunks back with gortmplib's chunk stream
// reader, as a player does: all the cases framed into one iovec list and
// one scratch, read as one chunk stream (each case alone is in
// TestPacketWireVectors).
func TestAppendRTMP(t *testing.T) {
	var bufs [][]byte
	var hdr []byte
	for _, tc := range wireCases() {
		p := &unit.Packet{Kind: tc.kind, Time: int64(tc.ts), Payload: tc.body}
		bufs, hdr = p.AppendRTMP(bufs, hdr)
	}
	r := newReader(t, bytes.Join(bufs, nil))
	for _, tc := range wireCases() {
		msg, err := r.Read()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		check(t, msg, tc, unit.RTMPMessageStreamID)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Errorf("bytes left after the messages: %v", err)
	}
	t.Run("packet AppendRTMP uses stream 1 and the low 32 bits of Time", func(t *testing.T) {
		p := &unit.Packet{Kind: unit.KindVideo, Time: 1<<32 + 7, Payload: body(5000)}
		msg, err := newReader(t, flatRTMP(t, p)).Read()
		if err != nil {
			t.Fatal(err)
		}
		check(t, msg, wireCase{kind: unit.KindVideo, ts: 7, body: p.Payload}, unit.RTMPMessageStreamID)
	})
}

// flatRTMP returns p's RTMP iovecs joined, after checking that the
// payload is not copied and that the framing fits the documented scratch.
func flatRTMP(t *testing.T, p *unit.Packet) []byte {
	t.Helper()
	bufs, hdr := p.AppendRTMP(nil, nil)
	if len(hdr) > unit.RTMPHeaderScratch {
		t.Errorf("AppendRTMP used %d bytes of scratch, documented at most %d", len(hdr), unit.RTMPHeaderScratch)
	}
	checkShared(t, bufs, p.Payload)
	return bytes.Join(bufs, nil)
}

// checkShared fails unless every payload byte in bufs is payload itself,
// in order: the iovecs that are not framing alias the packet.
func checkShared(t *testing.T, bufs [][]byte, payload []byte) {
	t.Helper()
	off := 0
	for _, b := range bufs {
		if len(b) == 0 || off >= len(payload) || &b[0] != &payload[off] {
			continue
		}
		off += len(b)
	}
	if off != len(payload) {
		t.Fatalf("%d of %d payload bytes go out as the packet's own bytes, want all (no copy)", off, len(payload))
	}
}

func TestPacketWireVectors(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := &unit.Packet{Kind: tc.kind, Time: int64(tc.ts), Payload: tc.body}
			msg, err := newReader(t, flatRTMP(t, p)).Read()
			if err != nil {
				t.Fatal(err)
			}
			check(t, msg, tc, unit.RTMPMessageStreamID)

			bufs, hdr := p.AppendFLV(nil, nil)
			if len(hdr) > unit.FLVHeaderScratch {
				t.Errorf("AppendFLV used %d bytes of scratch, documented %d", len(hdr), unit.FLVHeaderScratch)
			}
			checkShared(t, bufs, p.Payload)
			if flat := bytes.Join(bufs, nil); !bytes.Equal(flat, unit.AppendFLVTag(nil, tc.kind, tc.ts, tc.body)) {
				t.Fatalf("AppendFLV iovecs differ from AppendFLVTag")
			}
		})
	}
	t.Run("scratch of several packets keeps earlier headers", func(t *testing.T) {
		ps := []*unit.Packet{
			{Kind: unit.KindVideo, Time: 40, Payload: body(3 * unit.RTMPChunkSize)},
			{Kind: unit.KindAudio, Time: 0xFFFFFFF0, Payload: body(unit.RTMPChunkSize + 1)},
			{Kind: unit.KindData, Time: 5, Payload: metaBody},
		}
		var bufs [][]byte
		var hdr []byte
		for _, p := range ps {
			bufs, hdr = p.AppendRTMP(bufs, hdr)
		}
		r := newReader(t, bytes.Join(bufs, nil))
		for _, p := range ps {
			msg, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			check(t, msg, wireCase{kind: p.Kind, ts: uint32(p.Time), body: p.Payload}, unit.RTMPMessageStreamID)
		}
	})
}

// parseFLVTag reads one tag and its PreviousTagSize, as a player does.
func parseFLVTag(t *testing.T, b []byte) (kind unit.Kind, ts uint32, body, rest []byte) {
	t.Helper()
	if len(b) < 15 {
		t.Fatalf("tag of %d bytes", len(b))
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	ts = uint32(b[7])<<24 | uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
	if sid := b[8:11]; !bytes.Equal(sid, []byte{0, 0, 0}) {
		t.Errorf("stream id %x, want 0", sid)
	}
	if len(b) < 11+n+4 {
		t.Fatalf("tag says %d body bytes, has %d", n, len(b)-15)
	}
	if prev := binary.BigEndian.Uint32(b[11+n:]); prev != uint32(11+n) {
		t.Errorf("PreviousTagSize = %d, want %d", prev, 11+n)
	}
	return unit.Kind(b[0]), ts, b[11 : 11+n], b[11+n+4:]
}

func TestAppendFLVTag(t *testing.T) {
	var all []byte
	for _, tc := range wireCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := unit.AppendFLVTag(nil, tc.kind, tc.ts, tc.body)
			all = append(all, b...)
			kind, ts, body, rest := parseFLVTag(t, b)
			if kind != tc.kind || ts != tc.ts || !bytes.Equal(body, tc.body) || len(rest) != 0 {
				t.Fatalf("got kind %d ts %d body %d bytes rest %d; want %d %d %d 0", kind, ts, len(body), len(rest), tc.kind, tc.ts, len(tc.body))
			}
		})
	}
	t.Run("all in one file", func(t *testing.T) {
		rest := all
		for _, tc := range wireCases() {
			var kind unit.Kind
			var ts uint32
			var body []byte
			kind, ts, body, rest = parseFLVTag(t, rest)
			if kind != tc.kind || ts != tc.ts || !bytes.Equal(body, tc.body) {
				t.Fatalf("%s: got kind %d ts %d body %d bytes", tc.name, kind, ts, len(body))
			}
		}
	})
	t.Run("packet AppendFLV", func(t *testing.T) {
		p := &unit.Packet{Kind: unit.KindAudio, Time: 0x01020304, Payload: body(9)}
		bufs, _ := p.AppendFLV(nil, nil)
		kind, ts, b, _ := parseFLVTag(t, bytes.Join(bufs, nil))
		if kind != unit.KindAudio || ts != 0x01020304 || !bytes.Equal(b, p.Payload) {
			t.Fatalf("got %d %x %d bytes", kind, ts, len(b))
		}
	})
}
