// Package media is relaymesh's data plane: the stream hub (one writer, many
// readers, GOP cache), codec helpers, FLV <-> MPEG-TS remux and the protocol
// endpoints. It knows nothing of the cluster.
package media

import (
	"encoding/binary"
	"sync/atomic"
)

// Kind says what a packet carries.
type Kind uint8

// Packet kinds. Video, Audio and Data packets carry FLV tag bodies (the
// payload of an RTMP message of type 9, 8 and 18). TS packets carry whole
// 188-byte MPEG-TS packets.
const (
	KindVideo Kind = 9
	KindAudio Kind = 8
	KindData  Kind = 18
	KindTS    Kind = 0x47
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	case KindData:
		return "data"
	case KindTS:
		return "ts"
	}
	return "unknown"
}

// Packet is one unit of a stream. Once handed to Publisher.Write it is
// immutable and shared by reference between all readers; the wire forms
// (RTMP chunks, FLV tag) are built once, by the first reader that needs
// them, and reused by every other reader.
type Packet struct {
	Kind Kind
	// Time is the decode timestamp in milliseconds on the stream's
	// continuous timeline (the hub keeps it monotonic across publisher
	// reconnects). For KindTS it is informative only.
	Time int64
	// Keyframe marks a random access point: a video keyframe, or for
	// KindTS the first TS packet of a keyframe's PES.
	Keyframe bool
	// Header marks codec configuration (AVC/HEVC decoder configuration,
	// AAC AudioSpecificConfig), metadata (onMetaData) or, for KindTS, the
	// PAT and PMT. New readers receive the latest header of each kind first.
	Header bool
	// Payload is the FLV tag body, or whole TS packets for KindTS.
	Payload []byte

	seq  uint64
	rtmp atomic.Pointer[[]byte]
	flv  atomic.Pointer[[]byte]
}

// Seq is the packet's position in its lane, assigned by the hub.
func (p *Packet) Seq() uint64 { return p.seq }

// RTMPChunkSize is the chunk size relaymesh announces to every RTMP reader,
// so one serialization of a packet serves all of them.
const RTMPChunkSize = 4096

// RTMP chunk stream ids used for media sent to readers.
const (
	csidData  = 7
	csidAudio = 4
	csidVideo = 6
)

// RTMPMessageStreamID is the message stream id media is sent on.
const RTMPMessageStreamID = 1

// RTMPChunks returns the packet as RTMP chunks (a type-0 header, then
// type-3 continuation chunks of RTMPChunkSize) for message stream 1. It is
// computed once and shared.
func (p *Packet) RTMPChunks() []byte {
	if b := p.rtmp.Load(); b != nil {
		return *b
	}
	b := AppendRTMPChunks(nil, p.Kind, uint32(p.Time), RTMPMessageStreamID, RTMPChunkSize, p.Payload)
	p.rtmp.Store(&b)
	return b
}

// AppendRTMPChunks appends one RTMP message, chunked, to dst.
func AppendRTMPChunks(dst []byte, kind Kind, ts uint32, msid uint32, chunkSize int, body []byte) []byte {
	csid := byte(csidData)
	switch kind {
	case KindAudio:
		csid = csidAudio
	case KindVideo:
		csid = csidVideo
	}
	ext := ts >= 0xFFFFFF
	hts := ts
	if ext {
		hts = 0xFFFFFF
	}
	n := len(body)
	chunks := (n + chunkSize - 1) / chunkSize
	if chunks == 0 {
		chunks = 1
	}
	extra := 12 + (chunks - 1)
	if ext {
		extra += 4 * chunks
	}
	if cap(dst)-len(dst) < n+extra {
		nd := make([]byte, len(dst), len(dst)+n+extra)
		copy(nd, dst)
		dst = nd
	}
	dst = append(dst, csid, byte(hts>>16), byte(hts>>8), byte(hts),
		byte(n>>16), byte(n>>8), byte(n), byte(kind),
		byte(msid), byte(msid>>8), byte(msid>>16), byte(msid>>24))
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	for off := 0; off < n; off += chunkSize {
		if off > 0 {
			dst = append(dst, 0xC0|csid)
			if ext {
				dst = binary.BigEndian.AppendUint32(dst, ts)
			}
		}
		end := min(off+chunkSize, n)
		dst = append(dst, body[off:end]...)
	}
	return dst
}

// FLVTag returns the packet as a complete FLV tag followed by its
// PreviousTagSize field. It is computed once and shared.
func (p *Packet) FLVTag() []byte {
	if b := p.flv.Load(); b != nil {
		return *b
	}
	b := AppendFLVTag(make([]byte, 0, 15+len(p.Payload)), p.Kind, uint32(p.Time), p.Payload)
	p.flv.Store(&b)
	return b
}

// AppendFLVTag appends an FLV tag and its PreviousTagSize to dst.
func AppendFLVTag(dst []byte, kind Kind, ts uint32, body []byte) []byte {
	n := len(body)
	dst = append(dst, byte(kind), byte(n>>16), byte(n>>8), byte(n),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(11+n))
}
