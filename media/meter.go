package media

import (
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// meterHistory is how many one-second buckets a stream keeps: one hour.
const meterHistory = 3600

// Sample is one second of a stream's ingest.
type Sample struct {
	Time       time.Time `json:"time"`
	VideoBytes int64     `json:"video_bytes"`
	AudioBytes int64     `json:"audio_bytes"`
	Frames     int       `json:"frames"` // video frames
	// AudioFrames are the audio frames (an AAC frame is 1024 samples)
	AudioFrames int `json:"audio_frames"`
	Keyframes   int `json:"keyframes"`
}

// Meter counts a stream's ingest in one-second buckets for the last hour.
// The publisher adds; the API and metrics read. The buckets come in pages
// of meterPage seconds allocated as the stream lives on, so a new stream
// costs a few KiB, not the hour's.
type Meter struct {
	mu      sync.Mutex
	pages   [meterHistory / meterPage]*[meterPage]second
	cur     int64 // unix second of the newest bucket
	first   int64 // unix second of the first packet: older buckets are not the stream's
	lastKey time.Time
	keyIvl  time.Duration

	totalVideo, totalAudio int64
	totalFrames            int64 // video frames
	totalAudioFrames       int64

	now func() time.Time
}

// meterPage is how many seconds one page of buckets holds.
const meterPage = 300

// second is one bucket: what arrived in one unix second.
type second struct {
	sec          uint32 // the unix second it counts; another value means stale
	video, audio uint32 // bytes
	frames, keys uint16 // video frames, keyframes
	aframes      uint16 // audio frames
}

func (m *Meter) init(clock func() time.Time) {
	m.now = clock
	if m.now == nil {
		m.now = time.Now
	}
}

// slot returns sec's bucket for writing, reset if it held an older second.
func (m *Meter) slot(sec int64) *second {
	i := sec % meterHistory
	pg := m.pages[i/meterPage]
	if pg == nil {
		pg = new([meterPage]second)
		m.pages[i/meterPage] = pg
	}
	b := &pg[i%meterPage]
	if int64(b.sec) != sec {
		*b = second{sec: uint32(sec)}
	}
	return b
}

// get returns sec's bucket, zero unless it holds sec and the stream had
// started by then.
func (m *Meter) get(sec int64) second {
	if m.first == 0 || sec < m.first || sec > m.cur {
		return second{}
	}
	i := sec % meterHistory
	pg := m.pages[i/meterPage]
	if pg == nil || int64(pg[i%meterPage].sec) != sec {
		return second{}
	}
	return pg[i%meterPage]
}

// tick moves the newest second forward to now.
func (m *Meter) tick(now time.Time) {
	if sec := now.Unix(); sec > m.cur {
		m.cur = sec
	}
}

func (m *Meter) add(p *unit.Packet) {
	now := m.now()
	n := int64(len(p.Payload))
	m.mu.Lock()
	if m.first == 0 {
		m.first = now.Unix()
	}
	m.tick(now)
	b := m.slot(now.Unix())
	switch p.Kind {
	case unit.KindVideo:
		b.video += uint32(n)
		m.totalVideo += n
		if !p.Header && !sequenceEnd(p.Payload) {
			b.frames++
			m.totalFrames++
			if p.Keyframe {
				b.keys++
				if !m.lastKey.IsZero() {
					m.keyIvl = now.Sub(m.lastKey)
				}
				m.lastKey = now
			}
		}
	case unit.KindAudio:
		b.audio += uint32(n)
		m.totalAudio += n
		if !p.Header {
			b.aframes++
			m.totalAudioFrames++
		}
	}
	m.mu.Unlock()
}

// recentBitrate returns the ingest bit rate over the last window (whole
// seconds, the current partial second excluded).
func (m *Meter) recentBitrate(window time.Duration) int64 {
	secs := int64(window / time.Second)
	if secs < 1 {
		secs = 1
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tick(now)
	var bytes, n int64
	for i := int64(1); i <= secs; i++ {
		if m.first != 0 && m.cur-i >= m.first {
			b := m.get(m.cur - i)
			bytes += int64(b.video) + int64(b.audio)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return bytes * 8 / n
}

// Rates summarises the last few whole seconds.
type Rates struct {
	VideoBitrate int64         `json:"video_bitrate"` // bit/s
	AudioBitrate int64         `json:"audio_bitrate"`
	FPS          float64       `json:"fps"` // video frames per second (0 without video)
	KeyInterval  time.Duration `json:"-"`
	BytesIn      int64         `json:"bytes_in"`
	Frames       int64         `json:"frames"`       // video frames since the stream started
	AudioFrames  int64         `json:"audio_frames"` // audio frames since the stream started
}

// Rates returns averages over the last 5 whole seconds.
func (m *Meter) Rates() Rates {
	const secs = 5
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tick(now)
	var r Rates
	var vb, ab int64
	var frames, n int
	for i := int64(1); i <= secs; i++ {
		if m.first != 0 && m.cur-i >= m.first {
			b := m.get(m.cur - i)
			vb += int64(b.video)
			ab += int64(b.audio)
			frames += int(b.frames)
			n++
		}
	}
	if n > 0 {
		r.VideoBitrate = vb * 8 / int64(n)
		r.AudioBitrate = ab * 8 / int64(n)
		r.FPS = float64(frames) / float64(n)
	}
	r.KeyInterval = m.keyIvl
	r.BytesIn = m.totalVideo + m.totalAudio
	r.Frames = m.totalFrames
	r.AudioFrames = m.totalAudioFrames
	return r
}

// History returns the one-second samples between from and to (at most one
// hour back), aggregated into steps of res.
func (m *Meter) History(from, to time.Time, res time.Duration) []Sample {
	if res < time.Second {
		res = time.Second
	}
	step := int64(res / time.Second)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tick(now)
	lo := max(from.Unix(), m.cur-meterHistory+1)
	hi := min(to.Unix(), m.cur)
	var out []Sample
	for sec := lo; sec <= hi; sec += step {
		agg := Sample{Time: time.Unix(sec, 0)}
		for s := sec; s < sec+step && s <= hi; s++ {
			b := m.get(s)
			agg.VideoBytes += int64(b.video)
			agg.AudioBytes += int64(b.audio)
			agg.Frames += int(b.frames)
			agg.AudioFrames += int(b.aframes)
			agg.Keyframes += int(b.keys)
		}
		out = append(out, agg)
	}
	return out
}

// sequenceEnd reports whether a video tag body is an end of sequence
// (FLV muxers write one when the stream ends): no frame.
func sequenceEnd(body []byte) bool {
	v, ok := unit.ParseVideoTag(body)
	return ok && v.EOS
}
