package task

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/relaymesh/relaymesh/media/unit"
)

// maxFLVTag bounds one tag body (16 MiB is the format's own limit).
const maxFLVTag = 1 << 24

// flvItem reads an FLV file tag by tag.
type flvItem struct {
	f       io.Closer
	r       *bufio.Reader
	path    string
	headers []*unit.Packet
	queued  []*unit.Packet // media read while looking for the headers
	info    unit.CodecInfo
	first   int64
	based   bool
}

func newFLVItem(f *os.File, path string) (item, error) {
	it := &flvItem{f: f, r: bufio.NewReaderSize(f, 64<<10), path: path}
	if err := it.readHeader(); err != nil {
		f.Close()
		return nil, err
	}
	if err := it.probe(); err != nil {
		f.Close()
		return nil, err
	}
	return it, nil
}

// newFLVReader reads FLV from r (tests, fuzzing).
func newFLVReader(r io.Reader, path string) (*flvItem, error) {
	it := &flvItem{f: io.NopCloser(nil), r: bufio.NewReader(r), path: path}
	if err := it.readHeader(); err != nil {
		return nil, err
	}
	return it, it.probe()
}

func (it *flvItem) readHeader() error {
	var h [9]byte
	if _, err := io.ReadFull(it.r, h[:]); err != nil {
		return fmt.Errorf("%s: FLV header: %w", it.path, err)
	}
	if string(h[:3]) != "FLV" {
		return fmt.Errorf("%s: not an FLV file", it.path)
	}
	off := binary.BigEndian.Uint32(h[5:9])
	if off < 9 || off > 1024 {
		return fmt.Errorf("%s: FLV header size %d is not plausible", it.path, off)
	}
	if _, err := it.r.Discard(int(off) - 9 + 4); err != nil { // rest of the header, PreviousTagSize0
		return fmt.Errorf("%s: FLV header: %w", it.path, err)
	}
	return nil
}

// readTag returns the next audio, video or script tag as a packet
// (timestamps as written in the file).
func (it *flvItem) readTag() (*unit.Packet, error) {
	for {
		var h [11]byte
		if _, err := io.ReadFull(it.r, h[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				return nil, io.EOF // a truncated last tag ends the file
			}
			return nil, err
		}
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := int64(uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]))
		if size > maxFLVTag {
			return nil, fmt.Errorf("%s: FLV tag of %d bytes", it.path, size)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(it.r, body); err != nil {
			return nil, io.EOF
		}
		if _, err := it.r.Discard(4); err != nil && err != io.EOF {
			return nil, err
		}
		p := &unit.Packet{Kind: unit.Kind(h[0] & 0x1f), Time: ts, Payload: body}
		switch p.Kind {
		case unit.KindVideo:
			v, ok := unit.ParseVideoTag(body)
			if !ok || v.EOS {
				continue // end-of-sequence markers are not passed on: the task goes on
			}
			if v.Codec != "H264" && v.Codec != "H265" {
				return nil, fmt.Errorf("%s: %w: video codec %s (want H.264 or H.265)", it.path, ErrCodec, codecName(v.Codec, body))
			}
			p.Header, p.Keyframe = v.Header, v.Keyframe && !v.Header
		case unit.KindAudio:
			a, ok := unit.ParseAudioTag(body)
			if !ok {
				continue
			}
			if a.Codec != "AAC" {
				return nil, fmt.Errorf("%s: %w: audio codec %s (want AAC)", it.path, ErrCodec, a.Codec)
			}
			p.Header = a.Header
		case unit.KindData:
			p.Header = true
		default:
			continue
		}
		return p, nil
	}
}

func codecName(c string, body []byte) string {
	if c != "" {
		return c
	}
	if len(body) > 0 {
		return fmt.Sprintf("FLV id %d", body[0]&0x0f)
	}
	return "unknown"
}

// probe reads until the codec headers are known (or 300 tags), so a bad
// codec is refused before the task starts.
func (it *flvItem) probe() error {
	for i := 0; i < 300; i++ {
		p, err := it.readTag()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if p.Header {
			it.headers = append(it.headers, p)
			if ci, ok := unit.ParseHeader(p, it.info); ok {
				it.info = ci
			}
			continue
		}
		it.queued = append(it.queued, p)
		if it.info.Video != "" && it.info.Audio != "" {
			break
		}
	}
	if it.info.Video == "" && it.info.Audio == "" {
		return fmt.Errorf("%s: %w: no H.264/H.265 or AAC sequence header found", it.path, ErrCodec)
	}
	return nil
}

func (it *flvItem) Headers() []*unit.Packet { return it.headers }
func (it *flvItem) Info() unit.CodecInfo    { return it.info }
func (it *flvItem) Close() error            { return it.f.Close() }

func (it *flvItem) Next() (*unit.Packet, error) {
	var p *unit.Packet
	if len(it.queued) > 0 {
		p, it.queued = it.queued[0], it.queued[1:]
	} else {
		var err error
		for {
			if p, err = it.readTag(); err != nil {
				return nil, err
			}
			if !p.Header || p.Kind != unit.KindData {
				break
			}
		}
	}
	if !it.based {
		it.based, it.first = true, p.Time
	}
	p.Time -= it.first
	return p, nil
}
