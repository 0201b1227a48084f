package mpegts

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/relaymesh/relaymesh/media/unit"
)

// Errors the Muxer returns for packets it cannot use; the stream goes on.
var (
	ErrBadConfig = errors.New("bad codec configuration record")
	ErrBadFrame  = errors.New("bad frame")
)

const (
	codecNone = iota
	codecH264
	codecH265
)

// pcrDelay is how far the PCR runs behind the DTS (ffmpeg uses 0.7 s).
const pcrDelay = 700 * 90

// Muxer turns FLV-lane packets (H.264 legacy AVC, H.265 legacy codec id 12
// or Enhanced RTMP hvc1, AAC) into TS-lane packets: one lane packet of
// whole TS packets per access unit, a Header packet with PAT and PMT before
// the first access unit, before every video keyframe and whenever the
// programme changes. The hub (media) runs one per stream that has
// TS readers and an FLV publisher, in one goroutine.
type Muxer struct {
	vcodec  int
	nalLen  int
	params  [][]byte // VPS, SPS, PPS (HEVC) or SPS, PPS (AVC), Annex-B injected before keyframes
	hasAAC  bool
	adts    [7]byte // ADTS header template (frame length filled per frame)
	pmtVer  uint8
	pmtSet  [2]bool // video, audio tracks in the current PMT
	started bool
	lastPSI int64 // Time of the last tables (audio-only streams)

	ccPAT, ccPMT, ccV, ccA uint8

	es   []byte
	out  []byte
	hdr  [32]byte
	mem  slab
	errs uint64
}

// NewMuxer returns a Muxer with no codec configured yet.
func NewMuxer() *Muxer {
	return &Muxer{nalLen: 4}
}

// Remux converts one FLV-lane packet. Packets that cannot be used yet
// (frames before their decoder configuration) are dropped silently; bad
// ones return an error and are dropped.
func (m *Muxer) Remux(p *unit.Packet, emit func(*unit.Packet)) error {
	switch p.Kind {
	case unit.KindVideo:
		return m.video(p, emit)
	case unit.KindAudio:
		return m.audio(p, emit)
	}
	return nil
}

func (m *Muxer) video(p *unit.Packet, emit func(*unit.Packet)) error {
	b := p.Payload
	if len(b) < 1 {
		return fmt.Errorf("video tag: %w: empty", ErrBadFrame)
	}
	if b[0]&0x80 != 0 && len(b) >= 1 {
		// Enhanced RTMP: only SequenceStart (0), CodedFrames (1) and
		// CodedFramesX (3) carry what we need.
		if pt := b[0] & 0x0f; pt != 0 && pt != 1 && pt != 3 {
			return nil
		}
	}
	v, ok := unit.ParseVideoTag(b)
	if !ok {
		return fmt.Errorf("video tag: %w: short header", ErrBadFrame)
	}
	if v.EOS {
		return nil
	}
	codec := codecNone
	switch v.Codec {
	case "H264":
		codec = codecH264
	case "H265":
		codec = codecH265
	default:
		return nil // not carried over MPEG-TS here
	}
	if v.Header {
		params, nalLen, err := parseConfig(codec, v.Data)
		if err != nil {
			return err
		}
		m.vcodec, m.params, m.nalLen = codec, params, nalLen
		return nil
	}
	if m.vcodec != codec || m.params == nil {
		return nil // no decoder configuration yet
	}
	// Annex-B access unit: AUD, parameter sets before keyframes, the NALUs.
	key := false
	es := m.es[:0]
	if codec == codecH264 {
		es = append(es, 0, 0, 0, 1, 9, 0xF0)
	} else {
		es = append(es, 0, 0, 0, 1, 35<<1, 1, 0x50)
	}
	mark := len(es)
	hasParams := false
	for d := v.Data; len(d) > 0; {
		if len(d) < m.nalLen {
			return fmt.Errorf("video frame: %w: truncated NALU length", ErrBadFrame)
		}
		n := 0
		for i := range m.nalLen {
			n = n<<8 | int(d[i])
		}
		d = d[m.nalLen:]
		if n > len(d) || n == 0 {
			return fmt.Errorf("video frame: %w: NALU length %d exceeds the %d bytes left", ErrBadFrame, n, len(d))
		}
		nalu := d[:n]
		d = d[n:]
		var typ byte
		if codec == codecH264 {
			typ = nalu[0] & 0x1f
			switch typ {
			case 9:
				continue // our own AUD is in place
			case 5:
				key = true
			case 7, 8:
				hasParams = true
			}
		} else {
			typ = (nalu[0] >> 1) & 0x3f
			switch {
			case typ == 35:
				continue
			case typ >= 16 && typ <= 23:
				key = true
			case typ >= 32 && typ <= 34:
				hasParams = true
			}
		}
		es = append(es, 0, 0, 0, 1)
		es = append(es, nalu...)
	}
	if len(es) == mark {
		return nil
	}
	key = key || v.Keyframe
	if key && !hasParams {
		// inject parameter sets right after the AUD
		var inj []byte
		for _, ps := range m.params {
			inj = append(inj, 0, 0, 0, 1)
			inj = append(inj, ps...)
		}
		es = append(es, inj...)
		copy(es[mark+len(inj):], es[mark:len(es)-len(inj)])
		copy(es[mark:], inj)
	}
	m.es = es
	if key || m.tablesStale() {
		m.emitTables(p.Time, emit)
	}
	dts := p.Time * 90
	pts := (p.Time + int64(v.CTS)) * 90
	hdr := pesHeader(m.hdr[:0], streamIDVideo, pts, dts, len(es), false)
	pcr := max(dts-pcrDelay, 0)
	m.out = appendPES(m.out[:0], pidVideo, &m.ccV, hdr, es, pcr, key)
	emit(&unit.Packet{Kind: unit.KindTS, Time: p.Time, Keyframe: key, Payload: m.mem.copy(m.out)})
	return nil
}

func (m *Muxer) audio(p *unit.Packet, emit func(*unit.Packet)) error {
	a, ok := unit.ParseAudioTag(p.Payload)
	if !ok {
		return fmt.Errorf("audio tag: %w: short header", ErrBadFrame)
	}
	if a.Codec != "AAC" {
		return nil
	}
	if a.Header {
		var c mpeg4audio.AudioSpecificConfig
		if err := c.Unmarshal(a.Data); err != nil {
			return fmt.Errorf("AAC AudioSpecificConfig: %w: %w", ErrBadConfig, err)
		}
		idx := sampleRateIndex(c.SampleRate)
		if idx < 0 || c.ChannelConfig > 7 {
			return fmt.Errorf("AAC AudioSpecificConfig: %w: sample rate %d / channel configuration %d has no ADTS form", ErrBadConfig, c.SampleRate, c.ChannelConfig)
		}
		profile := byte(c.Type) - 1
		if c.Type < 1 || c.Type > 4 {
			profile = 1 // AAC LC core (HE-AAC is signalled implicitly)
		}
		m.adts = [7]byte{0xFF, 0xF1, profile<<6 | byte(idx)<<2 | c.ChannelConfig>>2, (c.ChannelConfig & 3) << 6, 0, 0x1F, 0xFC}
		m.hasAAC = true
		return nil
	}
	if !m.hasAAC || len(a.Data) == 0 {
		return nil
	}
	if len(a.Data)+7 > 0x1FFF {
		return fmt.Errorf("AAC frame: %w: %d bytes is too long for ADTS", ErrBadFrame, len(a.Data))
	}
	audioOnly := !m.pmtSet[0] && m.vcodec == codecNone
	if m.tablesStale() || (audioOnly && p.Time-m.lastPSI >= 1000) {
		m.emitTables(p.Time, emit)
	}
	n := len(a.Data) + 7
	h := m.adts
	h[3] |= byte(n >> 11)
	h[4] = byte(n >> 3)
	h[5] |= byte(n << 5)
	es := append(append(m.es[:0], h[:]...), a.Data...)
	m.es = es
	ts := p.Time * 90
	hdr := pesHeader(m.hdr[:0], streamIDAudio, ts, ts, len(es), true)
	pcr := int64(-1)
	if audioOnly {
		pcr = max(ts-pcrDelay, 0)
	}
	m.out = appendPES(m.out[:0], pidAudio, &m.ccA, hdr, es, pcr, audioOnly)
	emit(&unit.Packet{Kind: unit.KindTS, Time: p.Time, Keyframe: audioOnly, Payload: m.mem.copy(m.out)})
	return nil
}

// tablesStale reports whether the PMT no longer lists the tracks known.
func (m *Muxer) tablesStale() bool {
	return !m.started || m.pmtSet != [2]bool{m.vcodec != codecNone, m.hasAAC}
}

func (m *Muxer) emitTables(t int64, emit func(*unit.Packet)) {
	set := [2]bool{m.vcodec != codecNone, m.hasAAC}
	if m.started && set != m.pmtSet {
		m.pmtVer = (m.pmtVer + 1) & 0x1f
	}
	m.pmtSet, m.started, m.lastPSI = set, true, t
	var es [2]esInfo
	list := es[:0]
	pcrPID := uint16(pidAudio)
	if set[0] {
		st := byte(streamTypeH264)
		if m.vcodec == codecH265 {
			st = streamTypeH265
		}
		list = append(list, esInfo{st, pidVideo})
		pcrPID = pidVideo
	}
	if set[1] {
		list = append(list, esInfo{streamTypeAAC, pidAudio})
	}
	out := appendPAT(m.out[:0], &m.ccPAT, 0)
	out = appendPMT(out, &m.ccPMT, m.pmtVer, pcrPID, list)
	m.out = out
	emit(&unit.Packet{Kind: unit.KindTS, Time: t, Header: true, Payload: m.mem.copy(out)})
}

var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

func sampleRateIndex(sr int) int {
	for i, r := range adtsRates {
		if r == sr {
			return i
		}
	}
	return -1
}

// parseConfig reads the parameter sets and NALU length size from an
// AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord.
func parseConfig(codec int, rec []byte) (params [][]byte, nalLen int, err error) {
	bad := func(what string) ([][]byte, int, error) {
		return nil, 0, fmt.Errorf("%s decoder configuration: %w: %s", codecName(codec), ErrBadConfig, what)
	}
	if codec == codecH264 {
		if len(rec) < 7 || rec[0] != 1 {
			return bad("too short or version is not 1")
		}
		nalLen = int(rec[4]&3) + 1
		pos := 5
		for set := 0; set < 2; set++ {
			if pos >= len(rec) {
				return bad("truncated")
			}
			count := int(rec[pos])
			if set == 0 {
				count &= 0x1f
			}
			pos++
			for range count {
				if pos+2 > len(rec) {
					return bad("truncated")
				}
				n := int(binary.BigEndian.Uint16(rec[pos:]))
				pos += 2
				if n == 0 || pos+n > len(rec) {
					return bad("parameter set length out of range")
				}
				params = append(params, append([]byte(nil), rec[pos:pos+n]...))
				pos += n
			}
		}
	} else {
		if len(rec) < 23 || rec[0] != 1 {
			return bad("too short or version is not 1")
		}
		nalLen = int(rec[21]&3) + 1
		pos := 23
		for range int(rec[22]) {
			if pos+3 > len(rec) {
				return bad("truncated")
			}
			typ := rec[pos] & 0x3f
			count := int(binary.BigEndian.Uint16(rec[pos+1:]))
			pos += 3
			for range count {
				if pos+2 > len(rec) {
					return bad("truncated")
				}
				n := int(binary.BigEndian.Uint16(rec[pos:]))
				pos += 2
				if n == 0 || pos+n > len(rec) {
					return bad("NAL unit length out of range")
				}
				if typ >= 32 && typ <= 34 {
					params = append(params, append([]byte(nil), rec[pos:pos+n]...))
				}
				pos += n
			}
		}
	}
	if len(params) == 0 {
		return bad("no parameter sets")
	}
	if nalLen == 3 {
		return bad("NALU length size 3 is not allowed")
	}
	return params, nalLen, nil
}

func codecName(c int) string {
	if c == codecH265 {
		return "HEVC"
	}
	return "AVC"
}

// ParseDecoderConfig reads the parameter sets (H.264: SPS, PPS; H.265:
// VPS, SPS, PPS) and the NALU length size from an FLV video sequence
// header's AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord.
func ParseDecoderConfig(hevc bool, rec []byte) (params [][]byte, nalLen int, err error) {
	if hevc {
		return parseConfig(codecH265, rec)
	}
	return parseConfig(codecH264, rec)
}
