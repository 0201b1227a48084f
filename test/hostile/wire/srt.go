// Package wire builds protocol packets for the hostile-input harness: SRT
// packets written from the SRT protocol draft (draft-sharabayko-srt, "The
// SRT Protocol", sections 3 and 4.3), RTMP chunks and AMF0 values, and a
// seeded mutator. It builds bytes only; it never parses what a peer sends
// beyond the few fields a handshake needs.
package wire

import (
	"encoding/binary"
	"net/netip"
)

// SRT control types (draft section 3.2).
const (
	CtrlHandshake  uint16 = 0x0000
	CtrlKeepalive  uint16 = 0x0001
	CtrlACK        uint16 = 0x0002
	CtrlNAK        uint16 = 0x0003
	CtrlCongestion uint16 = 0x0004
	CtrlShutdown   uint16 = 0x0005
	CtrlACKACK     uint16 = 0x0006
	CtrlDropReq    uint16 = 0x0007
	CtrlPeerError  uint16 = 0x0008
	CtrlUser       uint16 = 0x7fff
)

// Handshake types (draft section 3.2.1).
const (
	HSWaveahand  uint32 = 0x00000000
	HSInduction  uint32 = 0x00000001
	HSDone       uint32 = 0xfffffffd
	HSAgreement  uint32 = 0xfffffffe
	HSConclusion uint32 = 0xffffffff
)

// Handshake extension types (draft section 3.2.1, table 5).
const (
	ExtHSReq      uint16 = 1
	ExtHSRsp      uint16 = 2
	ExtKMReq      uint16 = 3
	ExtKMRsp      uint16 = 4
	ExtSID        uint16 = 5
	ExtCongestion uint16 = 6
	ExtFilter     uint16 = 7
	ExtGroup      uint16 = 8
)

// Extension field flags of a v5 conclusion, and the induction magic.
const (
	FlagHSReq       uint16 = 0x0001
	FlagKMReq       uint16 = 0x0002
	FlagConfig      uint16 = 0x0004
	InductionMagic  uint16 = 0x4a17
	HeaderLen              = 16
	HandshakeCIFLen        = 48
)

// SRT flags of the HSREQ/HSRSP extension (draft section 3.2.1.1).
const (
	SRTFlagTSBPDSnd   uint32 = 0x01
	SRTFlagTSBPDRcv   uint32 = 0x02
	SRTFlagCrypt      uint32 = 0x04
	SRTFlagTLPktDrop  uint32 = 0x08
	SRTFlagPeriodNAK  uint32 = 0x10
	SRTFlagRexmit     uint32 = 0x20
	SRTFlagStream     uint32 = 0x40
	SRTFlagPacketFilt uint32 = 0x80
)

// ControlHeader is the 16-byte header of a control packet.
func ControlHeader(typ, subtype uint16, info, ts, dstSocket uint32) []byte {
	b := make([]byte, HeaderLen)
	binary.BigEndian.PutUint16(b[0:], 0x8000|typ)
	binary.BigEndian.PutUint16(b[2:], subtype)
	binary.BigEndian.PutUint32(b[4:], info)
	binary.BigEndian.PutUint32(b[8:], ts)
	binary.BigEndian.PutUint32(b[12:], dstSocket)
	return b
}

// Control is a control packet: header and control information field.
func Control(typ, subtype uint16, info, ts, dstSocket uint32, cif []byte) []byte {
	return append(ControlHeader(typ, subtype, info, ts, dstSocket), cif...)
}

// DataHeader describes a data packet's header (draft section 3.1).
type DataHeader struct {
	Seq       uint32 // 31 bits
	Position  uint8  // PP: 2 = first, 1 = last, 3 = solo, 0 = middle
	InOrder   bool   // O
	KeyFlags  uint8  // KK: 0 = clear, 1 = even key, 2 = odd key
	Rexmit    bool   // R
	MsgNo     uint32 // 26 bits
	Timestamp uint32
	DstSocket uint32
}

// Data is a data packet.
func Data(h DataHeader, payload []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(payload))
	binary.BigEndian.PutUint32(b[0:], h.Seq&0x7fffffff)
	w := uint32(h.Position&3)<<30 | uint32(h.KeyFlags&3)<<27 | h.MsgNo&0x03ffffff
	if h.InOrder {
		w |= 1 << 29
	}
	if h.Rexmit {
		w |= 1 << 26
	}
	binary.BigEndian.PutUint32(b[4:], w)
	binary.BigEndian.PutUint32(b[8:], h.Timestamp)
	binary.BigEndian.PutUint32(b[12:], h.DstSocket)
	return append(b, payload...)
}

// Handshake is the handshake control information field (draft 3.2.1).
type Handshake struct {
	Version    uint32 // 4 (induction request) or 5
	Encryption uint16 // 0, or 2/3/4 for AES-128/192/256 (advertised by a listener)
	ExtField   uint16 // flags in a v5 conclusion; magic in an induction answer; 2 in a v4 induction
	ISN        uint32
	MTU        uint32
	FlowWindow uint32
	Type       uint32
	SocketID   uint32
	Cookie     uint32
	PeerIP     netip.Addr
}

// Bytes is the 48-byte handshake CIF.
func (h Handshake) Bytes() []byte {
	b := make([]byte, HandshakeCIFLen)
	binary.BigEndian.PutUint32(b[0:], h.Version)
	binary.BigEndian.PutUint16(b[4:], h.Encryption)
	binary.BigEndian.PutUint16(b[6:], h.ExtField)
	binary.BigEndian.PutUint32(b[8:], h.ISN)
	binary.BigEndian.PutUint32(b[12:], h.MTU)
	binary.BigEndian.PutUint32(b[16:], h.FlowWindow)
	binary.BigEndian.PutUint32(b[20:], h.Type)
	binary.BigEndian.PutUint32(b[24:], h.SocketID)
	binary.BigEndian.PutUint32(b[28:], h.Cookie)
	// IPv4 goes in the first 32-bit word, in the byte order libsrt uses
	// (the address as a little-endian word: 127.0.0.1 -> 01 00 00 7f).
	if h.PeerIP.Is4() {
		a := h.PeerIP.As4()
		b[32], b[33], b[34], b[35] = a[3], a[2], a[1], a[0]
	} else if h.PeerIP.Is6() {
		a := h.PeerIP.As16()
		copy(b[32:], a[:])
	}
	return b
}

// ParseHandshake reads a handshake CIF (at least 48 bytes; the caller
// checks the length and the control header).
func ParseHandshake(cif []byte) (Handshake, bool) {
	if len(cif) < HandshakeCIFLen {
		return Handshake{}, false
	}
	return Handshake{
		Version:    binary.BigEndian.Uint32(cif[0:]),
		Encryption: binary.BigEndian.Uint16(cif[4:]),
		ExtField:   binary.BigEndian.Uint16(cif[6:]),
		ISN:        binary.BigEndian.Uint32(cif[8:]),
		MTU:        binary.BigEndian.Uint32(cif[12:]),
		FlowWindow: binary.BigEndian.Uint32(cif[16:]),
		Type:       binary.BigEndian.Uint32(cif[20:]),
		SocketID:   binary.BigEndian.Uint32(cif[24:]),
		Cookie:     binary.BigEndian.Uint32(cif[28:]),
	}, true
}

// Ext is one handshake extension block: type, length in 32-bit words and
// content. Length is normally len(Content)/4; set Words to lie about it.
type Ext struct {
	Type    uint16
	Content []byte
	Words   int // -1 = the true length (len(Content)+3)/4
}

// E is an extension with its true length; the content is padded to 4 bytes.
func E(typ uint16, content []byte) Ext { return Ext{Type: typ, Content: content, Words: -1} }

// Bytes is the extension block.
func (e Ext) Bytes() []byte {
	c := e.Content
	if e.Words < 0 {
		for len(c)%4 != 0 {
			c = append(c[:len(c):len(c)], 0)
		}
	}
	words := e.Words
	if words < 0 {
		words = len(c) / 4
	}
	b := make([]byte, 4, 4+len(c))
	binary.BigEndian.PutUint16(b[0:], e.Type)
	binary.BigEndian.PutUint16(b[2:], uint16(words))
	return append(b, c...)
}

// HandshakePacket is a full handshake control packet with extensions.
func HandshakePacket(dstSocket uint32, h Handshake, exts ...Ext) []byte {
	p := Control(CtrlHandshake, 0, 0, 0, dstSocket, h.Bytes())
	for _, e := range exts {
		p = append(p, e.Bytes()...)
	}
	return p
}

// HSReq is the content of an HSREQ or HSRSP extension: SRT version,
// flags, receiver and sender TSBPD delays in ms.
func HSReq(version, flags uint32, recvDelay, sendDelay uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b[0:], version)
	binary.BigEndian.PutUint32(b[4:], flags)
	binary.BigEndian.PutUint16(b[8:], recvDelay)
	binary.BigEndian.PutUint16(b[10:], sendDelay)
	return b
}

// DefaultHSFlags are the flags a live-mode caller sends.
const DefaultHSFlags = SRTFlagTSBPDSnd | SRTFlagTSBPDRcv | SRTFlagCrypt | SRTFlagTLPktDrop | SRTFlagPeriodNAK | SRTFlagRexmit

// SRTVersion is 1.5.1 as the HSREQ encodes it.
const SRTVersion uint32 = 0x00010501

// String4 is a string extension content (stream id, congestion, filter):
// each 32-bit word holds four characters in reverse order (draft 3.2.1.3),
// zero-padded.
func String4(s string) []byte {
	b := []byte(s)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return b
}

// KM describes a key material message (draft section 3.2.2).
type KM struct {
	Version  uint8 // 1
	PT       uint8 // 2 = KMmsg
	Sign     uint16
	KK       uint8 // 1 even, 2 odd, 3 both
	KEKI     uint32
	Cipher   uint8 // 2 = AES-CTR
	Auth     uint8
	SE       uint8 // 2 = live
	SLen     int   // salt bytes (16); written as SLen/4
	KLen     int   // key bytes (16, 24, 32); written as KLen/4
	Salt     []byte
	Wrap     []byte // wrapped key(s): 8 + KLen (x2 when KK = 3)
	RawSLenW int    // when >= 0, written instead of SLen/4
	RawKLenW int    // when >= 0, written instead of KLen/4
}

// DefaultKM is a well-formed AES-128 KM with a zero salt and key.
func DefaultKM() KM {
	return KM{Version: 1, PT: 2, Sign: 0x2029, KK: 1, Cipher: 2, SE: 2, SLen: 16, KLen: 16,
		Salt: make([]byte, 16), Wrap: make([]byte, 8+16), RawSLenW: -1, RawKLenW: -1}
}

// Bytes is the KM message.
func (k KM) Bytes() []byte {
	b := make([]byte, 16, 16+len(k.Salt)+len(k.Wrap))
	b[0] = (k.Version&7)<<4 | k.PT&0xf
	binary.BigEndian.PutUint16(b[1:], k.Sign)
	b[3] = k.KK & 3
	binary.BigEndian.PutUint32(b[4:], k.KEKI)
	b[8], b[9], b[10] = k.Cipher, k.Auth, k.SE
	sw, kw := k.SLen/4, k.KLen/4
	if k.RawSLenW >= 0 {
		sw = k.RawSLenW
	}
	if k.RawKLenW >= 0 {
		kw = k.RawKLenW
	}
	b[14], b[15] = byte(sw), byte(kw)
	b = append(b, k.Salt...)
	return append(b, k.Wrap...)
}

// Group is a GROUP extension content: group id, type, flags, weight.
func Group(id uint32, typ, flags uint8, weight uint16) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[0:], id)
	b[4], b[5] = typ, flags
	binary.BigEndian.PutUint16(b[6:], weight)
	return b
}

// U32s packs 32-bit words big-endian (ACK and NAK bodies, KMRSP errors).
func U32s(ws ...uint32) []byte {
	b := make([]byte, 4*len(ws))
	for i, w := range ws {
		binary.BigEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// Induction is the caller's first handshake (a v4 induction request).
func Induction(socket uint32, peer netip.Addr) []byte {
	return HandshakePacket(0, Handshake{Version: 4, ExtField: 2, ISN: 0x1234567, MTU: 1500, FlowWindow: 8192,
		Type: HSInduction, SocketID: socket, PeerIP: peer})
}

// Conclusion is a well-formed v5 caller conclusion: HSREQ, SID (when
// streamID is not empty) and the given extra extensions.
func Conclusion(socket, cookie uint32, peer netip.Addr, streamID string, extra ...Ext) []byte {
	flags := FlagHSReq
	exts := []Ext{E(ExtHSReq, HSReq(SRTVersion, DefaultHSFlags, 120, 120))}
	if streamID != "" {
		flags |= FlagConfig
		exts = append(exts, E(ExtSID, String4(streamID)))
	}
	for _, e := range extra {
		if e.Type == ExtKMReq {
			flags |= FlagKMReq
		}
		if e.Type != ExtKMReq && e.Type != ExtHSReq {
			flags |= FlagConfig
		}
	}
	exts = append(exts, extra...)
	return HandshakePacket(0, Handshake{Version: 5, ExtField: flags, ISN: 0x1234567, MTU: 1500, FlowWindow: 8192,
		Type: HSConclusion, SocketID: socket, Cookie: cookie, PeerIP: peer}, exts...)
}

// Crash65 is the 65-byte datagram of issue 10: a control header of type 0
// (handshake), a 48-byte v5 handshake body with HSTYPE_CONCLUSION and
// cookie 0, then one extra byte, so the extension block is truncated.
func Crash65() []byte {
	p := HandshakePacket(0, Handshake{Version: 5, ExtField: FlagHSReq, ISN: 1, MTU: 1500, FlowWindow: 8192,
		Type: HSConclusion, SocketID: 0x11223344})
	return append(p, 0x00)
}

// IsHandshake reports whether p is a handshake control packet and returns
// its CIF.
func IsHandshake(p []byte) (Handshake, bool) {
	if len(p) < HeaderLen+HandshakeCIFLen || binary.BigEndian.Uint16(p[0:]) != 0x8000 {
		return Handshake{}, false
	}
	return ParseHandshake(p[HeaderLen:])
}

// DstSocket is the destination socket id of any SRT packet.
func DstSocket(p []byte) uint32 {
	if len(p) < HeaderLen {
		return 0
	}
	return binary.BigEndian.Uint32(p[12:])
}
