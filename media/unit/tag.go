package unit

import (
	"bytes"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

// setDataFrame is the AMF0 string "@setDataFrame" that encoders put before
// onMetaData; it is stripped so readers receive plain onMetaData.
var setDataFrame = []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'}

var (
	onMetaData       = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}
	rtmpSampleAccess = []byte{0x02, 0x00, 0x11, '|', 'R', 't', 'm', 'p', 'S', 'a', 'm', 'p', 'l', 'e', 'A', 'c', 'c', 'e', 's', 's'}
)

// TagPacket turns an FLV tag body (the payload of an RTMP audio, video or
// AMF0 data message) into a hub packet with its keyframe and header flags.
// It returns nil for bodies that carry nothing for readers (empty media,
// |RtmpSampleAccess) and ErrMalformedTag for media it cannot read.
func TagPacket(kind Kind, ts int64, body []byte) (*Packet, error) {
	switch kind {
	case KindVideo:
		if len(body) == 0 {
			return nil, nil
		}
		v, ok := ParseVideoTag(body)
		if !ok {
			return nil, malformed("video", len(body))
		}
		return &Packet{Kind: kind, Time: ts, Keyframe: v.Keyframe && !v.Header, Header: v.Header, Payload: body}, nil
	case KindAudio:
		if len(body) == 0 {
			return nil, nil
		}
		a, ok := ParseAudioTag(body)
		if !ok {
			return nil, malformed("audio", len(body))
		}
		return &Packet{Kind: kind, Time: ts, Header: a.Header, Payload: body}, nil
	case KindData:
		body = bytes.TrimPrefix(body, setDataFrame)
		if len(body) == 0 || bytes.HasPrefix(body, rtmpSampleAccess) {
			return nil, nil
		}
		return &Packet{Kind: kind, Time: ts, Header: bytes.HasPrefix(body, onMetaData), Payload: body}, nil
	}
	return nil, nil
}

// MalformedTagError says which tag could not be read.
type MalformedTagError struct {
	What string
	Size int
}

func (e *MalformedTagError) Error() string {
	return "malformed " + e.What + " tag (" + itoa(e.Size) + " bytes)"
}

func malformed(what string, n int) error { return &MalformedTagError{What: what, Size: n} }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Unwrapper extends 32-bit millisecond timestamps (RTMP, FLV) to a 64-bit
// timeline across wrap-arounds (every 49.7 days).
type Unwrapper struct {
	last    uint32
	base    int64
	started bool
}

// Next returns ts on the continuous timeline.
func (u *Unwrapper) Next(ts uint32) int64 {
	if u.started {
		switch {
		case ts < u.last && u.last-ts > 1<<31:
			u.base += 1 << 32 // wrapped forwards
		case ts > u.last && ts-u.last > 1<<31:
			return u.base - 1<<32 + int64(ts) // a late packet from before the wrap
		}
	}
	u.last, u.started = ts, true
	return u.base + int64(ts)
}

// IsMetaData reports whether a data body is onMetaData.
func IsMetaData(body []byte) bool { return bytes.HasPrefix(body, onMetaData) }

// WithSetDataFrame returns onMetaData prefixed with "@setDataFrame", the
// form a publishing client sends.
func WithSetDataFrame(body []byte) []byte {
	return append(append(make([]byte, 0, len(setDataFrame)+len(body)), setDataFrame...), body...)
}

// Tracks is what a source declares it will carry, before its media comes:
// an RTMP or FLV publisher in its onMetaData, an MPEG-TS one in its PMT
// (the Demuxer turns the PMT into an onMetaData of the FLV lane).
type Tracks uint8

// What a source declares.
const (
	TracksUnknown   Tracks = iota // nothing, or nothing that can be read
	TracksAudioOnly               // audio and no video
	TracksVideo                   // video, with or without audio
)

func (t Tracks) String() string {
	switch t {
	case TracksAudioOnly:
		return "audio only"
	case TracksVideo:
		return "video"
	}
	return "nothing"
}

// maxMetaData bounds the onMetaData body DeclaredTracks decodes (encoders
// send well under 1 KiB); it bounds the decoder's nesting too.
const maxMetaData = 64 << 10

// DeclaredTracks reads what an onMetaData body declares: video when it
// names a video codec or a picture size (or says hasVideo true), audio
// only when it names an audio codec and nothing of video, or says
// hasVideo false. Anything else, or a body it cannot read, declares
// nothing.
func DeclaredTracks(body []byte) Tracks {
	if !IsMetaData(body) || len(body) > maxMetaData {
		return TracksUnknown
	}
	data, err := amf0.Unmarshal(body[len(onMetaData):])
	if err != nil || len(data) == 0 {
		return TracksUnknown
	}
	var obj amf0.Object
	switch o := data[0].(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return TracksUnknown
	}
	if v, ok := obj.Get("hasVideo"); ok {
		if b, ok := v.(bool); ok {
			if b {
				return TracksVideo
			}
			return TracksAudioOnly
		}
	}
	for _, k := range []string{"videocodecid", "width", "height"} {
		switch v, _ := obj.Get(k); v := v.(type) {
		case float64:
			if v > 0 {
				return TracksVideo
			}
		case string:
			if v != "" {
				return TracksVideo // Enhanced RTMP names a FourCC
			}
		}
	}
	if _, ok := obj.Get("audiocodecid"); ok {
		return TracksAudioOnly
	}
	return TracksUnknown
}

// MetaDataPacket returns an onMetaData header declaring a video track
// (videoCodec "H264" or "H265", "" for none) and an AAC track (audio), as
// an FLV publisher declares them.
func MetaDataPacket(ts int64, videoCodec string, audio bool) *Packet {
	obj := amf0.ECMAArray{}
	switch videoCodec {
	case "H264":
		obj = append(obj, amf0.ObjectEntry{Key: "videocodecid", Value: float64(flvCodecAVC)})
	case "H265":
		obj = append(obj, amf0.ObjectEntry{Key: "videocodecid", Value: float64(flvCodecHEVC)})
	}
	if audio {
		obj = append(obj, amf0.ObjectEntry{Key: "audiocodecid", Value: float64(flvSoundAAC)})
	}
	body, err := amf0.Data{"onMetaData", obj}.Marshal()
	if err != nil {
		panic(err) // numbers and strings always marshal
	}
	return &Packet{Kind: KindData, Time: ts, Header: true, Payload: body}
}
