// Package flv reads live FLV (HTTP-FLV responses, FLV files) into hub
// packets with a small strict parser.
package flv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/relaymesh/relaymesh/media/unit"
)

// ErrNotFLV is wrapped by every Reader error about the byte stream's
// structure.
var ErrNotFLV = errors.New("bad FLV")

// Limits of the Reader.
const (
	maxHeader = 1024    // DataOffset of the file header
	maxSkip   = 1 << 20 // a tag of a type we do not carry
)

// Reader reads live FLV (HTTP-FLV) into hub packets. It is strict about
// structure (signature, version, header size, PreviousTagSize, stream id,
// encryption) and about media tag heads, so that a source that is not FLV
// fails at once with a clear error rather than feeding garbage to readers.
// Tags of other types (e.g. script data other than type 18) are skipped.
type Reader struct {
	r       *bufio.Reader
	started bool
	clock   unit.Unwrapper
	hdr     [15]byte
	// Flags are the audio (4) and video (1) bits of the file header.
	Flags byte
	// tagged: a tag was returned; held is one returned after the
	// onMetaData the header's audio-only flags declare
	tagged bool
	held   *unit.Packet
}

// NewReader reads FLV from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

func flvErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotFLV}, a...)...)
}

// readHeader reads the 9+ byte file header and PreviousTagSize0.
func (f *Reader) readHeader() error {
	var h [9]byte
	if _, err := io.ReadFull(f.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return flvErr("stream ended inside the file header")
		}
		return err
	}
	if h[0] != 'F' || h[1] != 'L' || h[2] != 'V' {
		return flvErr("signature is %q, not \"FLV\"", h[:3])
	}
	if h[3] != 1 {
		return flvErr("version %d, want 1", h[3])
	}
	if h[4]&^0x05 != 0 {
		return flvErr("reserved header flag bits set (0x%02x)", h[4])
	}
	f.Flags = h[4]
	off := binary.BigEndian.Uint32(h[5:9])
	if off < 9 || off > maxHeader {
		return flvErr("header size %d outside 9..%d", off, maxHeader)
	}
	if _, err := f.r.Discard(int(off) - 9); err != nil {
		return flvErr("stream ended inside the file header")
	}
	var pts [4]byte
	if _, err := io.ReadFull(f.r, pts[:]); err != nil {
		return flvErr("stream ended before the first tag")
	}
	if v := binary.BigEndian.Uint32(pts[:]); v != 0 {
		return flvErr("PreviousTagSize0 is %d, want 0", v)
	}
	return nil
}

// ReadPacket returns the next audio, video or script-data packet. It
// returns io.EOF at a clean end between tags.
func (f *Reader) ReadPacket() (*unit.Packet, error) {
	if !f.started {
		if err := f.readHeader(); err != nil {
			return nil, err
		}
		f.started = true
	}
	if p := f.held; p != nil {
		f.held = nil
		return p, nil
	}
	for {
		if _, err := io.ReadFull(f.r, f.hdr[:11]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, flvErr("stream ended inside a tag header")
			}
			return nil, err
		}
		h := f.hdr[:11]
		if h[0]&0xc0 != 0 {
			return nil, flvErr("reserved tag bits set (0x%02x)", h[0])
		}
		if h[0]&0x20 != 0 {
			return nil, flvErr("encrypted tags (filter bit) are not supported")
		}
		typ := h[0] & 0x1f
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		if sid := int(h[8])<<16 | int(h[9])<<8 | int(h[10]); sid != 0 {
			return nil, flvErr("tag stream id %d, want 0", sid)
		}
		kind := unit.Kind(typ)
		carried := kind == unit.KindAudio || kind == unit.KindVideo || kind == unit.KindData
		if !carried && size > maxSkip {
			return nil, flvErr("tag of type %d with %d bytes", typ, size)
		}
		var body []byte
		if carried {
			var err error
			if body, err = readBody(f.r, size); err != nil {
				return nil, flvErr("stream ended inside a %d-byte tag", size)
			}
		} else if _, err := f.r.Discard(size); err != nil {
			return nil, flvErr("stream ended inside a %d-byte tag", size)
		}
		var pts [4]byte
		if _, err := io.ReadFull(f.r, pts[:]); err != nil {
			return nil, flvErr("stream ended before a PreviousTagSize")
		}
		if v := binary.BigEndian.Uint32(pts[:]); v != uint32(size)+11 {
			return nil, flvErr("PreviousTagSize %d after a %d-byte tag, want %d", v, size, size+11)
		}
		if !carried || size == 0 {
			continue
		}
		pk, err := unit.TagPacket(kind, f.clock.Next(ts), body)
		if err != nil {
			return nil, flvErr("%v", err)
		}
		if pk == nil {
			continue
		}
		if !f.tagged {
			f.tagged = true
			if f.Flags == 4 && !(pk.Kind == unit.KindData && unit.IsMetaData(pk.Payload)) {
				// a header that says audio only and no onMetaData of
				// its own: declared as one would, stamped like its
				// first tag (unit.DeclaredTracks)
				f.held = pk
				return unit.MetaDataPacket(pk.Time, "", true), nil
			}
		}
		return pk, nil
	}
}

// readBody reads a tag body of size bytes. Large declared sizes are read
// as the bytes arrive, so a peer cannot make us allocate 16 MiB up front
// with an 11-byte header.
func readBody(r io.Reader, size int) ([]byte, error) {
	const eager = 256 << 10
	if size <= eager {
		b := make([]byte, size)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, eager)
	for len(b) < size {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), min(2*cap(b), size))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil && len(b) < size {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}
