package media

import (
	"sync"
	"time"
)

// meterHistory is how many one-second buckets a stream keeps: one hour.
const meterHistory = 3600

// Sample is one second of a stream's ingest.
type Sample struct {
	Time       time.Time `json:"time"`
	VideoBytes int64     `json:"video_bytes"`
	AudioBytes int64     `json:"audio_bytes"`
	Frames     int       `json:"frames"`
	Keyframes  int       `json:"keyframes"`
}

// Meter counts a stream's ingest in one-second buckets for the last hour.
// The publisher adds; the API and metrics read.
type Meter struct {
	mu      sync.Mutex
	buckets []Sample // ring of meterHistory seconds
	cur     int64    // unix second of the newest bucket
	first   int64    // unix second of the first packet: older buckets are not the stream's
	lastKey time.Time
	keyIvl  time.Duration

	totalVideo, totalAudio int64
	totalFrames            int64

	now func() time.Time
}

func (m *Meter) init(clock func() time.Time) {
	m.buckets = make([]Sample, meterHistory)
	m.now = clock
	if m.now == nil {
		m.now = time.Now
	}
}

func (m *Meter) bucket(now time.Time) *Sample {
	sec := now.Unix()
	if sec != m.cur {
		if sec > m.cur {
			gap := sec - m.cur
			if gap > meterHistory {
				gap = meterHistory
			}
			for i := int64(1); i <= gap; i++ {
				b := &m.buckets[(sec-gap+i)%meterHistory]
				*b = Sample{Time: time.Unix(sec-gap+i, 0)}
			}
		}
		m.cur = sec
	}
	return &m.buckets[sec%meterHistory]
}

func (m *Meter) add(p *Packet) {
	now := m.now()
	n := int64(len(p.Payload))
	m.mu.Lock()
	if m.first == 0 {
		m.first = now.Unix()
	}
	b := m.bucket(now)
	switch p.Kind {
	case KindVideo:
		b.VideoBytes += n
		m.totalVideo += n
		if !p.Header {
			b.Frames++
			m.totalFrames++
			if p.Keyframe {
				b.Keyframes++
				if !m.lastKey.IsZero() {
					m.keyIvl = now.Sub(m.lastKey)
				}
				m.lastKey = now
			}
		}
	case KindAudio:
		b.AudioBytes += n
		m.totalAudio += n
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
	m.bucket(now)
	var bytes, n int64
	for i := int64(1); i <= secs; i++ {
		b := m.buckets[(m.cur-i+meterHistory)%meterHistory]
		if b.Time.Unix() == m.cur-i && m.cur-i >= m.first && m.first != 0 {
			bytes += b.VideoBytes + b.AudioBytes
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
	FPS          float64       `json:"fps"`
	KeyInterval  time.Duration `json:"-"`
	BytesIn      int64         `json:"bytes_in"`
	Frames       int64         `json:"frames"`
}

// Rates returns averages over the last 5 whole seconds.
func (m *Meter) Rates() Rates {
	const secs = 5
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bucket(now)
	var r Rates
	var vb, ab int64
	var frames, n int
	for i := int64(1); i <= secs; i++ {
		b := m.buckets[(m.cur-i+meterHistory)%meterHistory]
		if b.Time.Unix() == m.cur-i && m.cur-i >= m.first && m.first != 0 {
			vb += b.VideoBytes
			ab += b.AudioBytes
			frames += b.Frames
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
	m.bucket(now)
	lo := max(from.Unix(), m.cur-meterHistory+1)
	hi := min(to.Unix(), m.cur)
	var out []Sample
	for sec := lo; sec <= hi; sec += step {
		agg := Sample{Time: time.Unix(sec, 0)}
		for s := sec; s < sec+step && s <= hi; s++ {
			b := m.buckets[s%meterHistory]
			if b.Time.Unix() != s {
				continue
			}
			agg.VideoBytes += b.VideoBytes
			agg.AudioBytes += b.AudioBytes
			agg.Frames += b.Frames
			agg.Keyframes += b.Keyframes
		}
		out = append(out, agg)
	}
	return out
}
