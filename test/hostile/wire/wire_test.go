package wire

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestCrash65(t *testing.T) {
	p := Crash65()
	checks := []struct {
		name      string
		got, want uint32
	}{
		{"length", uint32(len(p)), 65},
		{"control bit and type 0 (handshake)", uint32(binary.BigEndian.Uint16(p[0:])), 0x8000},
		{"version", binary.BigEndian.Uint32(p[16:]), 5},
		{"handshake type", binary.BigEndian.Uint32(p[36:]), HSConclusion},
		{"cookie", binary.BigEndian.Uint32(p[44:]), 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
			}
		})
	}
}

func TestString4(t *testing.T) {
	cases := []struct{ in, want string }{
		{"abcd", "dcba"},
		{"abcdef", "dcba\x00\x00fe"},
		{"", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := String4(c.in); !bytes.Equal(got, []byte(c.want)) {
				t.Errorf("String4(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestExtLengths(t *testing.T) {
	cases := []struct {
		name  string
		ext   Ext
		words uint16
		size  int
	}{
		{"true length, padded", E(ExtSID, []byte("abcde")), 2, 12},
		{"lying length", Ext{Type: ExtHSRsp, Content: make([]byte, 12), Words: 0xffff}, 0xffff, 16},
		{"empty", Ext{Type: ExtHSRsp, Words: 0}, 0, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.ext.Bytes()
			if got := binary.BigEndian.Uint16(b[2:]); got != c.words || len(b) != c.size {
				t.Errorf("length field %d, %d bytes; want %d, %d", got, len(b), c.words, c.size)
			}
		})
	}
}

// TestMutateDeterministic: a case is replayed from (seed, index) alone.
func TestMutateDeterministic(t *testing.T) {
	base := Conclusion(1, 2, netip.MustParseAddr("127.0.0.1"), "read:live/x")
	for i := range uint64(200) {
		a := Mutate(NewRand(7, i), base, 8)
		b := Mutate(NewRand(7, i), base, 8)
		if !bytes.Equal(a, b) {
			t.Fatalf("case %d differs between two runs", i)
		}
	}
}

func TestRTMPChunk(t *testing.T) {
	m := RTMPMsg{CSID: 3, Type: RTMPCommandAMF0, StreamID: 1, Payload: make([]byte, 300)}
	b := m.Chunk(128)
	// type 0 header (1 + 11), 128 bytes, 1-byte type 3 header, 128, 1, 44
	if want := 12 + 300 + 2; len(b) != want {
		t.Fatalf("%d bytes, want %d", len(b), want)
	}
	if got := binary.LittleEndian.Uint32(b[8:]); got != 1 {
		t.Errorf("message stream id %d, want 1 little-endian", got)
	}
	if b[12+128] != 0xc3 || b[12+128+1+128] != 0xc3 {
		t.Errorf("continuation headers %#x %#x, want 0xc3", b[12+128], b[12+128+1+128])
	}
}
