// Package task runs pseudo-live tasks: a playlist of MP4/FLV files (or a
// live URL) is read at real time, looped, and published as a live stream
// during a time window, with state changes reported to a webhook.
package task

import (
	"errors"
	"fmt"
	"io"

	"github.com/relaymesh/relaymesh/media/unit"
)

// ErrCodec is returned for media the task cannot carry (anything but
// H.264/H.265 video and AAC audio).
var ErrCodec = errors.New("unsupported codec")

// item is an opened playlist file: its codec headers and its packets in
// decode order with millisecond timestamps starting near 0.
type item interface {
	// Headers are the codec configuration packets (and metadata).
	Headers() []*unit.Packet
	// Next returns the next packet, or io.EOF at the end.
	Next() (*unit.Packet, error)
	// Info says what the file carries.
	Info() unit.CodecInfo
	Close() error
}

// openItem opens a local file by its content (FLV signature or MP4 boxes).
func openItem(path string) (item, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	var sig [3]byte
	if _, err := io.ReadFull(f, sig[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: too short to be MP4 or FLV", path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if string(sig[:]) == "FLV" {
		return newFLVItem(f, path)
	}
	return newMP4Item(f, path)
}

// flvVideoHeader builds an FLV video sequence header body.
func flvVideoHeader(codec string, conf []byte) []byte {
	if codec == "H265" { // Enhanced RTMP: SequenceStart, hvc1
		return append([]byte{0x80 | 1<<4 | 0, 'h', 'v', 'c', '1'}, conf...)
	}
	return append([]byte{0x17, 0, 0, 0, 0}, conf...)
}

// flvVideoFrame builds an FLV video frame body from length-prefixed NALUs.
func flvVideoFrame(codec string, key bool, cts int32, data []byte) []byte {
	ft := byte(2)
	if key {
		ft = 1
	}
	c := []byte{byte(cts >> 16), byte(cts >> 8), byte(cts)}
	if codec == "H265" { // Enhanced RTMP: CodedFrames with composition time
		b := make([]byte, 0, 8+len(data))
		b = append(b, 0x80|ft<<4|1, 'h', 'v', 'c', '1')
		b = append(b, c...)
		return append(b, data...)
	}
	b := make([]byte, 0, 5+len(data))
	b = append(b, ft<<4|7, 1)
	b = append(b, c...)
	return append(b, data...)
}

// flvAudio builds an AAC FLV audio body (0xAF: AAC, 44 kHz, 16 bit, stereo
// as FLV requires for AAC).
func flvAudio(header bool, data []byte) []byte {
	t := byte(1)
	if header {
		t = 0
	}
	b := make([]byte, 0, 2+len(data))
	b = append(b, 0xAF, t)
	return append(b, data...)
}
