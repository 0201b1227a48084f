package hls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/relaymesh/relaymesh/media/mpegts"
	"github.com/relaymesh/relaymesh/media/unit"
)

// audioWait is how long (media ms) a muxer waits for an audio header
// after the first keyframe.
const audioWait = 1000

// errCodecChanged ends a muxer whose stream changed codec parameters: the
// next request starts a new one with the new tracks.
var errCodecChanged = errors.New("codec parameters changed")

// feeder turns FLV tag bodies from the hub into gohlslib writes. It waits
// for the first video keyframe (or, on an audio-only stream, the first
// audio frame) to know the tracks, then starts the gohlslib muxer.
type feeder struct {
	variant gohlslib.MuxerVariant
	part    time.Duration
	count   int
	onErr   func(error)

	vhdr, ahdr []byte // sequence headers seen
	firstKey   int64  // media time of the first keyframe seen before the audio header, -1 = none
	vcodec     string
	nalLen     int
	vconf      codecs.Codec
	params     [][]byte // parameter sets, put in front of every keyframe (the DTS extractor needs them in band)
	video      *gohlslib.Track
	audio      *gohlslib.Track
	sampleRate int
	aconf      mpeg4audio.AudioSpecificConfig
	m          *gohlslib.Muxer
	started    func(*gohlslib.Muxer)
}

// write handles one packet; hasVideo says whether the stream announces
// video (so an audio-only stream starts on its first audio frame).
func (f *feeder) write(p *unit.Packet, hasVideo bool) error {
	switch p.Kind {
	case unit.KindVideo:
		v, ok := unit.ParseVideoTag(p.Payload)
		if !ok || (v.Codec != "H264" && v.Codec != "H265") {
			return nil
		}
		if v.Header {
			if f.m != nil {
				// a repeated header (SRT sources send one per keyframe)
				// changes nothing unless its parameter sets differ
				c, _, _, err := videoCodec(v.Codec, v.Data)
				if err == nil && (v.Codec != f.vcodec || !reflect.DeepEqual(c, f.vconf)) {
					return errCodecChanged
				}
				return nil
			}
			f.vhdr = append([]byte(nil), v.Data...)
			f.vcodec = v.Codec
			return nil
		}
		if f.m == nil {
			if !v.Keyframe || f.vhdr == nil {
				return nil
			}
			// MPEG-TS sources announce AAC only with its first frame,
			// which may follow the first keyframe: wait up to a second
			// of media for it, then start without audio
			if f.ahdr == nil {
				if f.firstKey < 0 {
					f.firstKey = p.Time
				}
				if p.Time-f.firstKey < audioWait {
					return nil
				}
			}
			if err := f.start(); err != nil {
				return err
			}
		}
		if f.video == nil || v.EOS {
			return nil
		}
		au, err := splitAVCC(v.Data, f.nalLen)
		if err != nil || len(au) == 0 {
			return nil // a broken frame costs only itself
		}
		if v.Keyframe {
			au = append(append(make([][]byte, 0, len(f.params)+len(au)), f.params...), au...)
		}
		pts := (p.Time + int64(v.CTS)) * 90
		if f.vcodec == "H265" {
			return f.m.WriteH265(f.video, time.Now(), pts, au)
		}
		return f.m.WriteH264(f.video, time.Now(), pts, au)
	case unit.KindAudio:
		a, ok := unit.ParseAudioTag(p.Payload)
		if !ok || a.Codec != "AAC" {
			return nil
		}
		if a.Header {
			if f.m != nil {
				var conf mpeg4audio.AudioSpecificConfig
				if conf.Unmarshal(a.Data) == nil && f.audio != nil &&
					(conf.Type != f.aconf.Type || conf.SampleRate != f.aconf.SampleRate || conf.ChannelCount != f.aconf.ChannelCount) {
					return errCodecChanged
				}
				return nil
			}
			f.ahdr = append([]byte(nil), a.Data...)
			return nil
		}
		if f.m == nil {
			if hasVideo || f.ahdr == nil {
				return nil
			}
			if err := f.start(); err != nil {
				return err
			}
		}
		if f.audio == nil || len(a.Data) == 0 {
			return nil
		}
		pts := p.Time * int64(f.sampleRate) / 1000
		return f.m.WriteMPEG4Audio(f.audio, time.Now(), pts, [][]byte{a.Data})
	}
	return nil
}

// start builds the tracks from the sequence headers and starts the muxer.
func (f *feeder) start() error {
	var tracks []*gohlslib.Track
	if f.vhdr != nil {
		c, params, nalLen, err := videoCodec(f.vcodec, f.vhdr)
		if err != nil {
			return err
		}
		f.nalLen, f.params, f.vconf = nalLen, params, c
		if f.variant == gohlslib.MuxerVariantMPEGTS && f.vcodec != "H264" {
			return errPlainH265
		}
		f.video = &gohlslib.Track{Codec: c, ClockRate: 90000}
		tracks = append(tracks, f.video)
	}
	if f.ahdr != nil {
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(f.ahdr); err != nil {
			return fmt.Errorf("AAC AudioSpecificConfig: %w", err)
		}
		f.sampleRate, f.aconf = conf.SampleRate, conf
		f.audio = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: conf}, ClockRate: conf.SampleRate}
		tracks = append(tracks, f.audio)
	}
	m := &gohlslib.Muxer{
		Tracks:          tracks,
		Variant:         f.variant,
		SegmentCount:    f.count,
		PartMinDuration: f.part,
		OnEncodeError:   f.onErr,
	}
	if f.variant != gohlslib.MuxerVariantLowLatency {
		m.SegmentMinDuration = time.Second
	}
	if err := m.Start(); err != nil {
		return fmt.Errorf("start hls muxer: %w", err)
	}
	f.m = m
	f.started(m)
	return nil
}

// videoCodec reads the parameter sets of an H.264 or H.265 decoder
// configuration record.
func videoCodec(codec string, rec []byte) (codecs.Codec, [][]byte, int, error) {
	params, nalLen, err := mpegts.ParseDecoderConfig(codec == "H265", rec)
	if err != nil {
		return nil, nil, 0, err
	}
	if codec == "H265" {
		h := &codecs.H265{}
		for _, ps := range params {
			switch h265.NALUType((ps[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				h.VPS = ps
			case h265.NALUType_SPS_NUT:
				h.SPS = ps
			case h265.NALUType_PPS_NUT:
				h.PPS = ps
			}
		}
		if h.VPS == nil || h.SPS == nil || h.PPS == nil {
			return nil, nil, 0, fmt.Errorf("H.265 decoder configuration lacks a VPS, SPS or PPS")
		}
		return h, params, nalLen, nil
	}
	h := &codecs.H264{}
	for _, ps := range params {
		switch ps[0] & 0x1f {
		case 7:
			if h.SPS == nil {
				h.SPS = ps
			}
		case 8:
			if h.PPS == nil {
				h.PPS = ps
			}
		}
	}
	if h.SPS == nil || h.PPS == nil {
		return nil, nil, 0, fmt.Errorf("H.264 decoder configuration lacks an SPS or PPS")
	}
	return h, params, nalLen, nil
}

// splitAVCC splits length-prefixed NAL units.
func splitAVCC(b []byte, nalLen int) ([][]byte, error) {
	if nalLen != 4 && nalLen != 2 && nalLen != 1 {
		nalLen = 4
	}
	var out [][]byte
	for len(b) > 0 {
		if len(b) < nalLen {
			return nil, errors.New("truncated NAL unit length")
		}
		var n int
		switch nalLen {
		case 4:
			n = int(binary.BigEndian.Uint32(b))
		case 2:
			n = int(binary.BigEndian.Uint16(b))
		default:
			n = int(b[0])
		}
		b = b[nalLen:]
		if n <= 0 || n > len(b) {
			return nil, errors.New("NAL unit length out of range")
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out, nil
}
