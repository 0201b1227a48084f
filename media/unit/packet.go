// Package unit is the leaf of the data plane: the packet every protocol
// package and the hub pass around (Packet, Kind), its wire forms (RTMP
// chunks, FLV tags), and what a packet's FLV tag body says about the codec
// (CodecInfo, ParseVideoTag, ParseAudioTag, Tracks). It imports nothing of
// relaymesh, so the hub (media), the remuxers (media/mpegts) and the
// endpoints can all depend on it.
package unit

import (
	"encoding/binary"
	"net"
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

// Header slots: a stream keeps the latest header packet of each slot, and
// replays them to a new reader in slot order (metadata first).
const (
	SlotData = iota
	SlotVideo
	SlotAudio
	SlotTS // PAT and PMT
	NumSlots
)

// HeaderSlot returns the header slot of p's kind.
func HeaderSlot(p *Packet) int {
	switch p.Kind {
	case KindVideo:
		return SlotVideo
	case KindAudio:
		return SlotAudio
	case KindTS:
		return SlotTS
	}
	return SlotData
}

// Packet is one unit of a stream. Once handed to Publisher.Write it is
// immutable and shared by reference between all readers. Its wire forms
// (RTMP chunks, FLV tag) are never copied out: a reader sends the framing
// from a small scratch of its own and the payload itself, as separate
// iovecs of one writev, so a payload is kept once however many read it.
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

	seq uint64
}

// Seq is the packet's position in its lane, assigned by the hub.
func (p *Packet) Seq() uint64 { return p.seq }

// SetSeq numbers the packet; only the hub's lane that takes it calls it,
// once, before any reader sees the packet.
func (p *Packet) SetSeq(seq uint64) { p.seq = seq }

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

// RTMPHeaderScratch is the most scratch AppendRTMP needs per packet.
const RTMPHeaderScratch = 16 + 5

// AppendRTMP appends the packet as RTMP chunks for message stream 1 (a
// type-0 header, then type-3 continuation chunks of RTMPChunkSize) to
// bufs: the chunk headers as slices of hdr, to which it appends at most
// RTMPHeaderScratch bytes, and the payload as slices of Payload.
func (p *Packet) AppendRTMP(bufs net.Buffers, hdr []byte) (net.Buffers, []byte) {
	ts := uint32(p.Time)
	n := len(p.Payload)
	start := len(hdr)
	hdr = appendChunkHeader(hdr, p.Kind, ts, RTMPMessageStreamID, n)
	h0 := hdr[start:len(hdr):len(hdr)]
	if n <= RTMPChunkSize {
		return append(bufs, h0, p.Payload), hdr
	}
	start = len(hdr)
	hdr = appendContinuation(hdr, p.Kind, ts)
	h3 := hdr[start:len(hdr):len(hdr)]
	bufs = append(bufs, h0, p.Payload[:RTMPChunkSize])
	for off := RTMPChunkSize; off < n; off += RTMPChunkSize {
		bufs = append(bufs, h3, p.Payload[off:min(off+RTMPChunkSize, n)])
	}
	return bufs, hdr
}

// FLVHeaderScratch is the scratch AppendFLV needs per packet.
const FLVHeaderScratch = 15

// AppendFLV appends the packet as an FLV tag and its PreviousTagSize to
// bufs: the tag header and the size as slices of hdr (FLVHeaderScratch
// bytes appended), the body as Payload itself.
func (p *Packet) AppendFLV(bufs net.Buffers, hdr []byte) (net.Buffers, []byte) {
	n := len(p.Payload)
	ts := uint32(p.Time)
	start := len(hdr)
	hdr = appendFLVHeader(hdr, p.Kind, ts, n)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(11+n))
	h := hdr[start:len(hdr):len(hdr)]
	return append(bufs, h[:11], p.Payload, h[11:]), hdr
}

func chunkStream(kind Kind) byte {
	switch kind {
	case KindAudio:
		return csidAudio
	case KindVideo:
		return csidVideo
	}
	return csidData
}

// appendChunkHeader appends a type-0 chunk header for a message of n bytes.
func appendChunkHeader(dst []byte, kind Kind, ts uint32, msid uint32, n int) []byte {
	hts := min(ts, 0xFFFFFF)
	dst = append(dst, chunkStream(kind), byte(hts>>16), byte(hts>>8), byte(hts),
		byte(n>>16), byte(n>>8), byte(n), byte(kind),
		byte(msid), byte(msid>>8), byte(msid>>16), byte(msid>>24))
	if ts >= 0xFFFFFF {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	return dst
}

// appendContinuation appends a type-3 chunk header.
func appendContinuation(dst []byte, kind Kind, ts uint32) []byte {
	dst = append(dst, 0xC0|chunkStream(kind))
	if ts >= 0xFFFFFF {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	return dst
}

// AppendFLVTag appends an FLV tag and its PreviousTagSize to dst.
func AppendFLVTag(dst []byte, kind Kind, ts uint32, body []byte) []byte {
	n := len(body)
	dst = appendFLVHeader(dst, kind, ts, n)
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(11+n))
}

// appendFLVHeader appends the 11-byte header of an FLV tag of n body bytes.
func appendFLVHeader(dst []byte, kind Kind, ts uint32, n int) []byte {
	return append(dst, byte(kind), byte(n>>16), byte(n>>8), byte(n),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
}
