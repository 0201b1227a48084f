package task

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/relaymesh/relaymesh/media/unit"
)

// maxSamples bounds the sample table of one file (about 5 hours at 60 fps
// plus audio).
const maxSamples = 4 << 20

type mp4Sample struct {
	kind unit.Kind
	dts  int64 // ms
	cts  int32 // ms
	key  bool
	off  uint64
	size uint32
}

// mp4Item reads a progressive MP4 (moov before or after mdat) sample by
// sample, in decode order across tracks.
type mp4Item struct {
	f       *os.File
	path    string
	headers []*unit.Packet
	info    unit.CodecInfo
	vcodec  string
	samples []mp4Sample
	i       int
}

func newMP4Item(f *os.File, path string) (it item, err error) {
	defer func() {
		if r := recover(); r != nil { // mp4ff panics on some broken tables
			err = fmt.Errorf("%s: broken MP4: %v", path, r)
		}
		if err != nil {
			f.Close()
		}
	}()
	file, err := mp4.DecodeFile(f, mp4.WithDecodeMode(mp4.DecModeLazyMdat))
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable MP4: %w", path, err)
	}
	if file.IsFragmented() || file.Moov == nil {
		return nil, fmt.Errorf("%s: fragmented MP4 is not supported: remux it with ffmpeg -c copy -movflags +faststart", path)
	}
	m := &mp4Item{f: f, path: path}
	for _, trak := range file.Moov.Traks {
		if err := m.addTrack(trak); err != nil {
			return nil, err
		}
	}
	if m.info.Video == "" && m.info.Audio == "" {
		return nil, fmt.Errorf("%s: %w: no H.264/H.265 video or AAC audio track", path, ErrCodec)
	}
	sort.SliceStable(m.samples, func(i, j int) bool { return m.samples[i].dts < m.samples[j].dts })
	if len(m.samples) > 0 {
		first := m.samples[0].dts
		for i := range m.samples {
			m.samples[i].dts -= first
		}
	}
	return m, nil
}

func (m *mp4Item) addTrack(trak *mp4.TrakBox) error {
	if trak.Mdia == nil || trak.Mdia.Hdlr == nil || trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Mdhd == nil {
		return nil
	}
	stbl := trak.Mdia.Minf.Stbl
	if stbl.Stsd == nil || len(stbl.Stsd.Children) == 0 {
		return nil
	}
	entry := stbl.Stsd.Children[0].Type()
	var kind unit.Kind
	switch trak.Mdia.Hdlr.HandlerType {
	case "vide":
		kind = unit.KindVideo
		var conf bytes.Buffer
		switch {
		case stbl.Stsd.AvcX != nil && stbl.Stsd.AvcX.AvcC != nil:
			m.vcodec = "H264"
			if err := stbl.Stsd.AvcX.AvcC.DecConfRec.Encode(&conf); err != nil {
				return fmt.Errorf("%s: avcC: %w", m.path, err)
			}
		case stbl.Stsd.HvcX != nil && stbl.Stsd.HvcX.HvcC != nil:
			m.vcodec = "H265"
			if err := stbl.Stsd.HvcX.HvcC.DecConfRec.Encode(&conf); err != nil {
				return fmt.Errorf("%s: hvcC: %w", m.path, err)
			}
		default:
			return fmt.Errorf("%s: %w: video track %q (want H.264 avc1/avc3 or H.265 hvc1/hev1)", m.path, ErrCodec, entry)
		}
		if m.info.Video != "" {
			return nil // a second video track is ignored
		}
		h := &unit.Packet{Kind: unit.KindVideo, Header: true, Payload: flvVideoHeader(m.vcodec, conf.Bytes())}
		m.headers = append(m.headers, h)
		if ci, ok := unit.ParseHeader(h, m.info); ok {
			m.info = ci
		}
		m.info.Video = m.vcodec
	case "soun":
		kind = unit.KindAudio
		a := stbl.Stsd.Mp4a
		if a == nil || a.Esds == nil || a.Esds.DecConfigDescriptor == nil || a.Esds.DecConfigDescriptor.ObjectType != 0x40 ||
			a.Esds.DecConfigDescriptor.DecSpecificInfo == nil {
			if a != nil && a.Esds != nil && a.Esds.DecConfigDescriptor != nil {
				entry = fmt.Sprintf("%s, object type 0x%02x", entry, a.Esds.DecConfigDescriptor.ObjectType)
			}
			return fmt.Errorf("%s: %w: audio track %s (want AAC, object type 0x40)", m.path, ErrCodec, entry)
		}
		if m.info.Audio != "" {
			return nil
		}
		h := &unit.Packet{Kind: unit.KindAudio, Header: true, Payload: flvAudio(true, a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig)}
		m.headers = append(m.headers, h)
		if ci, ok := unit.ParseHeader(h, m.info); ok {
			m.info = ci
		}
		m.info.Audio = "AAC"
	default:
		return nil
	}
	return m.addSamples(kind, trak)
}

func (m *mp4Item) addSamples(kind unit.Kind, trak *mp4.TrakBox) error {
	stbl := trak.Mdia.Minf.Stbl
	ts := uint64(trak.Mdia.Mdhd.Timescale)
	if ts == 0 || stbl.Stsz == nil || stbl.Stts == nil || stbl.Stsc == nil || (stbl.Stco == nil && stbl.Co64 == nil) {
		return fmt.Errorf("%s: incomplete sample table", m.path)
	}
	n := int(stbl.Stsz.GetNrSamples())
	if n+len(m.samples) > maxSamples {
		return fmt.Errorf("%s: %d samples is more than this reader takes", m.path, n)
	}
	chunkOff := func(nr int) (uint64, error) {
		if stbl.Stco != nil {
			return stbl.Stco.GetOffset(nr)
		}
		return stbl.Co64.GetOffset(nr)
	}
	// decode times from stts, walked once
	var dts uint64
	sttsIdx, sttsLeft := 0, uint32(0)
	if len(stbl.Stts.SampleCount) > 0 {
		sttsLeft = stbl.Stts.SampleCount[0]
	}
	// offsets from stsc/stco, walked chunk by chunk
	curChunk, off := -1, uint64(0)
	var cttsIdx int
	var cttsLeft uint32
	if stbl.Ctts != nil && stbl.Ctts.NrSampleCount() > 0 {
		cttsLeft = stbl.Ctts.SampleCount(0)
	}
	for nr := 1; nr <= n; nr++ {
		chunk, first, err := stbl.Stsc.ChunkNrFromSampleNr(nr)
		if err != nil {
			return fmt.Errorf("%s: stsc: %w", m.path, err)
		}
		if chunk != curChunk {
			curChunk = chunk
			if off, err = chunkOff(chunk); err != nil {
				return fmt.Errorf("%s: chunk offsets: %w", m.path, err)
			}
			for s := first; s < nr; s++ {
				off += uint64(stbl.Stsz.GetSampleSize(s))
			}
		}
		size := stbl.Stsz.GetSampleSize(nr)
		s := mp4Sample{kind: kind, dts: int64(dts * 1000 / ts), off: off, size: size, key: kind == unit.KindAudio}
		if kind == unit.KindVideo {
			s.key = stbl.Stss == nil || stbl.Stss.IsSyncSample(uint32(nr))
			if stbl.Ctts != nil && cttsIdx < stbl.Ctts.NrSampleCount() {
				o := int64(stbl.Ctts.SampleOffset[cttsIdx])
				s.cts = int32(o * 1000 / int64(ts))
				cttsLeft--
				if cttsLeft == 0 {
					cttsIdx++
					if cttsIdx < stbl.Ctts.NrSampleCount() {
						cttsLeft = stbl.Ctts.SampleCount(cttsIdx)
					}
				}
			}
		}
		m.samples = append(m.samples, s)
		off += uint64(size)
		if sttsIdx < len(stbl.Stts.SampleTimeDelta) {
			dts += uint64(stbl.Stts.SampleTimeDelta[sttsIdx])
			sttsLeft--
			for sttsLeft == 0 && sttsIdx+1 < len(stbl.Stts.SampleCount) {
				sttsIdx++
				sttsLeft = stbl.Stts.SampleCount[sttsIdx]
			}
		}
	}
	return nil
}

func (m *mp4Item) Headers() []*unit.Packet { return m.headers }
func (m *mp4Item) Info() unit.CodecInfo    { return m.info }
func (m *mp4Item) Close() error            { return m.f.Close() }

func (m *mp4Item) Next() (*unit.Packet, error) {
	if m.i >= len(m.samples) {
		return nil, io.EOF
	}
	s := m.samples[m.i]
	m.i++
	if s.size > maxFLVTag {
		return nil, fmt.Errorf("%s: sample of %d bytes", m.path, s.size)
	}
	buf := make([]byte, s.size)
	if _, err := m.f.ReadAt(buf, int64(s.off)); err != nil {
		return nil, fmt.Errorf("%s: read sample: %w", m.path, err)
	}
	p := &unit.Packet{Kind: s.kind, Time: s.dts}
	if s.kind == unit.KindVideo {
		p.Keyframe = s.key
		p.Payload = flvVideoFrame(m.vcodec, s.key, s.cts, buf)
	} else {
		p.Payload = flvAudio(false, buf)
	}
	return p, nil
}
