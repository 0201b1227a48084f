package unit

import (
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// CodecInfo is what a stream carries, read from its codec headers.
type CodecInfo struct {
	Video      string `json:"video,omitempty"` // "H264", "H265"
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	Audio      string `json:"audio,omitempty"` // "AAC"
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
}

// FLV codec ids and Enhanced RTMP FourCCs.
const (
	flvCodecAVC  = 7
	flvCodecHEVC = 12
	flvSoundAAC  = 10
	flvSoundEx   = 9
)

var (
	fourCCHEVC = [4]byte{'h', 'v', 'c', '1'}
	fourCCAVC  = [4]byte{'a', 'v', 'c', '1'}
)

// VideoTag is the parsed head of an FLV video tag body.
type VideoTag struct {
	Codec    string // "H264", "H265", or "" when unknown
	Keyframe bool
	Header   bool // sequence start (decoder configuration)
	EOS      bool
	CTS      int32 // composition time offset, ms
	Data     []byte
}

// ParseVideoTag reads the legacy or Enhanced RTMP head of a video body.
func ParseVideoTag(b []byte) (VideoTag, bool) {
	var v VideoTag
	if len(b) < 1 {
		return v, false
	}
	if b[0]&0x80 != 0 { // Enhanced RTMP
		if len(b) < 5 {
			return v, false
		}
		frameType := (b[0] >> 4) & 7
		pktType := b[0] & 0x0f
		var cc [4]byte
		copy(cc[:], b[1:5])
		switch cc {
		case fourCCHEVC:
			v.Codec = "H265"
		case fourCCAVC:
			v.Codec = "H264"
		default:
			v.Codec = string(cc[:])
		}
		v.Keyframe = frameType == 1
		v.Data = b[5:]
		switch pktType {
		case 0: // SequenceStart
			v.Header = true
		case 1: // CodedFrames: SI24 composition time
			if len(b) < 8 {
				return v, false
			}
			v.CTS = si24(b[5:8])
			v.Data = b[8:]
		case 2: // SequenceEnd
			v.EOS = true
		}
		if frameType == 0 && (pktType == 1 || pktType == 3) {
			// some publishers (gortmplib's Writer) leave the frame type
			// unset: read the NAL unit types instead
			v.Keyframe = avccKey(v.Codec, v.Data)
		}
		return v, true
	}
	v.Keyframe = b[0]>>4 == 1
	switch b[0] & 0x0f {
	case flvCodecAVC:
		v.Codec = "H264"
	case flvCodecHEVC:
		v.Codec = "H265"
	default:
		// other legacy codecs (and video info/command frames) carry no
		// packet type byte: pass them through as they are
		v.Data = b[1:]
		return v, true
	}
	if len(b) < 5 {
		return v, false
	}
	v.Header = b[1] == 0
	v.EOS = b[1] == 2
	v.CTS = si24(b[2:5])
	v.Data = b[5:]
	return v, true
}

func si24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	if v&0x800000 != 0 {
		v -= 1 << 24
	}
	return v
}

// AudioTag is the parsed head of an FLV audio tag body.
type AudioTag struct {
	Codec  string
	Header bool
	Data   []byte
}

// ParseAudioTag reads the head of an audio body.
func ParseAudioTag(b []byte) (AudioTag, bool) {
	var a AudioTag
	if len(b) < 1 {
		return a, false
	}
	switch b[0] >> 4 {
	case flvSoundAAC:
		if len(b) < 2 {
			return a, false
		}
		a.Codec = "AAC"
		a.Header = b[1] == 0
		a.Data = b[2:]
	case flvSoundEx:
		if len(b) < 5 {
			return a, false
		}
		a.Codec = string(b[1:5])
		if a.Codec == "mp4a" {
			a.Codec = "AAC"
		}
		a.Header = b[0]&0x0f == 0
		a.Data = b[5:]
	case 2:
		a.Codec = "MP3"
		a.Data = b[1:]
	default:
		a.Codec = "other"
		a.Data = b[1:]
	}
	return a, true
}

// ParseHeader updates prev with what a header packet says.
func ParseHeader(p *Packet, prev CodecInfo) (CodecInfo, bool) {
	ci := prev
	switch p.Kind {
	case KindVideo:
		v, ok := ParseVideoTag(p.Payload)
		if !ok || !v.Header {
			return prev, false
		}
		ci.Video = v.Codec
		ci.Width, ci.Height = 0, 0
		switch v.Codec {
		case "H264":
			if sps := avcSPS(v.Data); sps != nil {
				var s h264.SPS
				if s.Unmarshal(sps) == nil {
					ci.Width, ci.Height = s.Width(), s.Height()
				}
			}
		case "H265":
			if sps := hevcNALU(v.Data, 33); sps != nil {
				var s h265.SPS
				if s.Unmarshal(sps) == nil {
					ci.Width, ci.Height = s.Width(), s.Height()
				}
			}
		}
		return ci, true
	case KindAudio:
		a, ok := ParseAudioTag(p.Payload)
		if !ok || !a.Header {
			return prev, false
		}
		ci.Audio = a.Codec
		if a.Codec == "AAC" {
			var c mpeg4audio.AudioSpecificConfig
			if c.Unmarshal(a.Data) == nil {
				ci.SampleRate, ci.Channels = c.SampleRate, c.ChannelCount
			}
		}
		return ci, true
	}
	return prev, false
}

// avcSPS returns the first SPS of an AVCDecoderConfigurationRecord.
func avcSPS(rec []byte) []byte {
	if len(rec) < 8 || rec[5]&0x1f == 0 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(rec[6:8]))
	if len(rec) < 8+n {
		return nil
	}
	return rec[8 : 8+n]
}

// hevcNALU returns the first NAL unit of type typ in an HEVCDecoderConfigurationRecord.
func hevcNALU(rec []byte, typ byte) []byte {
	if len(rec) < 23 {
		return nil
	}
	pos := 23
	for i := 0; i < int(rec[22]); i++ {
		if pos+3 > len(rec) {
			return nil
		}
		t := rec[pos] & 0x3f
		count := int(binary.BigEndian.Uint16(rec[pos+1:]))
		pos += 3
		for j := 0; j < count; j++ {
			if pos+2 > len(rec) {
				return nil
			}
			n := int(binary.BigEndian.Uint16(rec[pos:]))
			pos += 2
			if pos+n > len(rec) {
				return nil
			}
			if t == typ {
				return rec[pos : pos+n]
			}
			pos += n
		}
	}
	return nil
}

// avccKey reports whether length-prefixed NAL units hold an IDR (H.264)
// or IRAP (H.265) picture.
func avccKey(codec string, b []byte) bool {
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n <= 0 || n > len(b) {
			return false
		}
		switch codec {
		case "H264":
			if b[0]&0x1f == 5 {
				return true
			}
		case "H265":
			if t := (b[0] >> 1) & 0x3f; t >= 16 && t <= 23 {
				return true
			}
		}
		b = b[n:]
	}
	return false
}
