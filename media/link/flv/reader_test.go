package flv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/relaymesh/relaymesh/media/unit"
)

func readAllFLV(b []byte) ([]*unit.Packet, error) {
	fr := NewReader(bytes.NewReader(b))
	var out []*unit.Packet
	for {
		p, err := fr.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, p)
	}
}

func TestFLVReaderFile(t *testing.T) {
	b, err := os.ReadFile("testdata/small.flv")
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := readAllFLV(b)
	if err != nil {
		t.Fatalf("ffmpeg's FLV: %v", err)
	}
	var video, audio, keys, headers, meta int
	last := int64(-1)
	for _, p := range pkts {
		switch p.Kind {
		case unit.KindVideo:
			if p.Header {
				headers++
				continue
			}
			if v, _ := unit.ParseVideoTag(p.Payload); v.EOS {
				continue // ffmpeg ends the file with an end-of-sequence tag
			}
			video++
			if p.Keyframe {
				keys++
			}
			if p.Time < last {
				t.Errorf("video time went back: %d after %d", p.Time, last)
			}
			last = p.Time
		case unit.KindAudio:
			if p.Header {
				headers++
			} else {
				audio++
			}
		case unit.KindData:
			if p.Header {
				meta++
			}
		}
	}
	// 0.6 s at 10 fps with a keyframe every 5 frames
	if video != 6 || keys != 2 || headers != 2 || meta != 1 || audio < 10 {
		t.Errorf("got %d video (%d keys), %d audio, %d headers, %d metadata", video, keys, audio, headers, meta)
	}
	// the reader's output written back as FLV is the same file
	out := append([]byte(nil), b[:13]...)
	for _, p := range pkts {
		out = unit.AppendFLVTag(out, p.Kind, uint32(p.Time), p.Payload)
	}
	if !bytes.Equal(out, b) {
		t.Errorf("re-serialized FLV differs from the input (%d vs %d bytes)", len(out), len(b))
	}
}

func TestFLVReaderBad(t *testing.T) {
	good, err := os.ReadFile("testdata/small.flv")
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	tag := func(typ byte, body []byte, pts uint32) []byte {
		b := unit.AppendFLVTag(nil, unit.Kind(typ), 0, body)
		b = b[:len(b)-4]
		return append(b, byte(pts>>24), byte(pts>>16), byte(pts>>8), byte(pts))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	cases := []struct {
		name string
		in   []byte
		want string // "" = clean end
	}{
		{"empty", nil, ""},
		{"html", []byte("<!DOCTYPE html><html>"), "signature"},
		{"version 2", []byte{'F', 'L', 'V', 2, 5, 0, 0, 0, 9, 0, 0, 0, 0}, "version"},
		{"reserved flags", []byte{'F', 'L', 'V', 1, 0xff, 0, 0, 0, 9, 0, 0, 0, 0}, "reserved header flag"},
		{"header size 8", []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 8, 0, 0, 0, 0}, "header size"},
		{"header size huge", []byte{'F', 'L', 'V', 1, 5, 0x7f, 0, 0, 0}, "header size"},
		{"truncated header", []byte{'F', 'L', 'V', 1}, "inside the file header"},
		{"PreviousTagSize0", []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 7}, "PreviousTagSize0"},
		{"bad prev size", cat(hdr, tag(9, []byte{0x17, 1, 0, 0, 0, 1}, 99)), "PreviousTagSize 99"},
		{"encrypted", cat(hdr, tag(0x29, []byte{0x17, 1, 0, 0, 0}, 16)), "encrypted"},
		{"stream id", func() []byte {
			b := cat(hdr, tag(9, []byte{0x17, 1, 0, 0, 0}, 16))
			b[13+10] = 1
			return b
		}(), "stream id"},
		{"short video", cat(hdr, tag(9, []byte{0x17, 1}, 13)), "malformed video"},
		{"short aac", cat(hdr, tag(8, []byte{0xaf}, 12)), "malformed audio"},
		{"truncated tag", good[:len(good)-100], "stream ended inside"},
		{"truncated tag header", cat(hdr, []byte{9, 0, 0}), "inside a tag header"},
		{"huge unknown tag", cat(hdr, []byte{7, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0}), "type 7"},
		{"unknown tag skipped", cat(hdr, tag(7, []byte{1, 2, 3}, 14)), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAllFLV(c.in)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v, want a clean end", err)
			case c.want != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want))):
				t.Errorf("got %v, want an error mentioning %q", err, c.want)
			case c.want != "" && c.want != "stream ended inside" && !errors.Is(err, ErrNotFLV):
				t.Errorf("%v does not wrap ErrNotFLV", err)
			}
		})
	}
}

func TestFLVReaderTimestampWrap(t *testing.T) {
	b := []byte{'F', 'L', 'V', 1, 1, 0, 0, 0, 9, 0, 0, 0, 0}
	body := []byte{0x27, 1, 0, 0, 0, 0xaa}
	for _, ts := range []uint32{0xFFFFFF00, 0xFFFFFFF0, 0x10, 0x50} {
		b = unit.AppendFLVTag(b, unit.KindVideo, ts, body)
	}
	pkts, err := readAllFLV(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{0xFFFFFF00, 0xFFFFFFF0, 1<<32 + 0x10, 1<<32 + 0x50}
	for i, p := range pkts {
		if p.Time != want[i] {
			t.Errorf("packet %d: time %#x, want %#x", i, p.Time, want[i])
		}
	}
}

var declaredAudio = unit.MetaDataPacket(0, "", true).Payload

// TestFLVReaderDeclaresAudioOnly: a file header whose flags say audio
// only, with no onMetaData first, is declared as an onMetaData would be
// (unit.DeclaredTracks: a flow starts such a source at once), stamped
// like the first tag; flags for both tracks, or an onMetaData of the
// file's own, add nothing.
func TestFLVReaderDeclaresAudioOnly(t *testing.T) {
	aac := []byte{0xaf, 0, 0x12, 0x10}
	meta := unit.MetaDataPacket(0, "H264", true).Payload
	for _, c := range []struct {
		name  string
		flags byte
		first []byte // the first tag (script data when it is meta)
		want  unit.Tracks
		n     int // packets
	}{
		{"audio-only flags", 4, aac, unit.TracksAudioOnly, 3},
		{"both flags", 5, aac, unit.TracksUnknown, 2},
		{"audio-only flags, own onMetaData", 4, meta, unit.TracksVideo, 2},
	} {
		b := []byte{'F', 'L', 'V', 1, c.flags, 0, 0, 0, 9, 0, 0, 0, 0}
		kind := unit.KindAudio
		if bytes.Equal(c.first, meta) {
			kind = unit.KindData
		}
		b = unit.AppendFLVTag(b, kind, 1000, c.first)
		b = unit.AppendFLVTag(b, unit.KindAudio, 1020, []byte{0xaf, 1, 0x21, 0x10})
		pkts, err := readAllFLV(b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(pkts) != c.n {
			t.Fatalf("%s: %d packets, want %d", c.name, len(pkts), c.n)
		}
		got := unit.TracksUnknown
		if pkts[0].Kind == unit.KindData {
			got = unit.DeclaredTracks(pkts[0].Payload)
		}
		if got != c.want || pkts[0].Time != 1000 || !pkts[0].Header {
			t.Errorf("%s: first packet %v at %d declares %v, want %v at 1000", c.name, pkts[0].Kind, pkts[0].Time, got, c.want)
		}
		if last := pkts[len(pkts)-1]; last.Time != 1020 || last.Kind != unit.KindAudio {
			t.Errorf("%s: last packet %v at %d, want the audio frame at 1020", c.name, last.Kind, last.Time)
		}
	}
}

// FuzzReader: no input makes the reader panic, loop or return a packet
// bigger than its input.
func FuzzReader(f *testing.F) {
	if b, err := os.ReadFile("testdata/small.flv"); err == nil {
		f.Add(b)
		f.Add(b[:2000])
	}
	f.Add([]byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewReader(bytes.NewReader(in))
		total := 0
		for i := 0; i <= len(in); i++ {
			p, err := fr.ReadPacket()
			if err != nil {
				return
			}
			if i == 0 && bytes.Equal(p.Payload, declaredAudio) {
				continue // the reader's own: the header said audio only
			}
			total += len(p.Payload)
			if total > len(in) || len(p.Payload) == 0 {
				t.Fatalf("packet of %d bytes (total %d) from %d input bytes", len(p.Payload), total, len(in))
			}
		}
		t.Fatalf("more packets than input bytes")
	})
}
