package wire

import (
	"encoding/binary"
	"math"
	"sort"
)

// RTMP message types (Adobe RTMP specification 5.4 and 7.1).
const (
	RTMPSetChunkSize  byte = 1
	RTMPAbort         byte = 2
	RTMPAck           byte = 3
	RTMPUserControl   byte = 4
	RTMPWindowAck     byte = 5
	RTMPPeerBandwidth byte = 6
	RTMPAudio         byte = 8
	RTMPVideo         byte = 9
	RTMPDataAMF0      byte = 18
	RTMPCommandAMF0   byte = 20
)

// RTMPMsg is one RTMP message to be chunked.
type RTMPMsg struct {
	CSID      uint32 // chunk stream id (2 ... 65599)
	Type      byte
	StreamID  uint32 // message stream id (little-endian on the wire)
	Timestamp uint32
	Payload   []byte
	// Length, when not zero, is written instead of len(Payload) (a lie).
	Length uint32
}

// Chunk serializes m with the given chunk size: a type 0 chunk, then
// type 3 continuation chunks.
func (m RTMPMsg) Chunk(size int) []byte {
	if size <= 0 {
		size = 128
	}
	var b []byte
	b = appendBasic(b, 0, m.CSID)
	ts := m.Timestamp
	if ts >= 0xffffff {
		ts = 0xffffff
	}
	length := uint32(len(m.Payload))
	if m.Length != 0 {
		length = m.Length
	}
	b = append(b, byte(ts>>16), byte(ts>>8), byte(ts), byte(length>>16), byte(length>>8), byte(length), m.Type)
	b = binary.LittleEndian.AppendUint32(b, m.StreamID)
	if ts == 0xffffff {
		b = binary.BigEndian.AppendUint32(b, m.Timestamp)
	}
	p := m.Payload
	for first := true; first || len(p) > 0; first = false {
		if !first {
			b = appendBasic(b, 3, m.CSID)
			if ts == 0xffffff {
				b = binary.BigEndian.AppendUint32(b, m.Timestamp)
			}
		}
		n := min(size, len(p))
		b = append(b, p[:n]...)
		p = p[n:]
	}
	return b
}

func appendBasic(b []byte, fmtType byte, csid uint32) []byte {
	switch {
	case csid >= 2 && csid <= 63:
		return append(b, fmtType<<6|byte(csid))
	case csid >= 64 && csid <= 319:
		return append(b, fmtType<<6, byte(csid-64))
	default:
		v := csid - 64
		return append(b, fmtType<<6|1, byte(v), byte(v>>8))
	}
}

// AMF0 values (AMF0 specification section 2).
type (
	AMFNull   struct{}
	AMFObject map[string]any
	// AMFECMA is an ECMA array; Count, when not zero, is written instead
	// of the true number of entries.
	AMFECMA struct {
		Entries map[string]any
		Count   uint32
	}
	// AMFRaw is written as is (a malformed value).
	AMFRaw []byte
)

// AMF0 encodes values: float64, int, bool, string, AMFNull, AMFObject,
// AMFECMA, []any (strict array) and AMFRaw.
func AMF0(vals ...any) []byte {
	var b []byte
	for _, v := range vals {
		b = appendAMF(b, v)
	}
	return b
}

func appendAMF(b []byte, v any) []byte {
	switch v := v.(type) {
	case float64:
		b = append(b, 0x00)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	case int:
		return appendAMF(b, float64(v))
	case bool:
		if v {
			return append(b, 0x01, 1)
		}
		return append(b, 0x01, 0)
	case string:
		if len(v) > 0xffff {
			b = append(b, 0x0c)
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			return append(b, v...)
		}
		b = append(b, 0x02)
		return appendAMFKey(b, v)
	case AMFNull:
		return append(b, 0x05)
	case AMFObject:
		b = append(b, 0x03)
		b = appendProps(b, v)
		return append(b, 0, 0, 0x09)
	case AMFECMA:
		b = append(b, 0x08)
		n := uint32(len(v.Entries))
		if v.Count != 0 {
			n = v.Count
		}
		b = binary.BigEndian.AppendUint32(b, n)
		b = appendProps(b, v.Entries)
		return append(b, 0, 0, 0x09)
	case []any:
		b = append(b, 0x0a)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		for _, e := range v {
			b = appendAMF(b, e)
		}
		return b
	case AMFRaw:
		return append(b, v...)
	}
	return append(b, 0x06) // undefined
}

func appendAMFKey(b []byte, k string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
	return append(b, k...)
}

func appendProps(b []byte, m map[string]any) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic bytes
	for _, k := range keys {
		b = appendAMFKey(b, k)
		b = appendAMF(b, m[k])
	}
	return b
}

// RTMPC0C1 is a plain (non-digest) client handshake start: version 3 and
// 1536 bytes of time, zero and filler.
func RTMPC0C1(filler []byte) []byte {
	b := make([]byte, 1+1536)
	b[0] = 3
	copy(b[9:], filler)
	return b
}

// Connect is a connect command (transaction 1) to app.
func Connect(app, tcURL string) []byte {
	return AMF0("connect", 1, AMFObject{"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0", "tcUrl": tcURL})
}

// VideoConfig is an FLV AVC sequence header tag body with a tiny
// (syntactically plausible) avcC record.
func VideoConfig() []byte {
	return []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80}
}
