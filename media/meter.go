package media

import (
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/media/unit"
)

// meterHistory is how far back a stream's meter reaches: one hour.
const meterHistory = 3600

// The meter keeps two tiers: one-second buckets for the last meterFine
// seconds and one-minute buckets for the rest of the hour. Every packet is
// counted in both, so a minute's sums are exactly its seconds' sums. At
// 20 bytes a second and 32 a minute a stream's meter is about 9 KiB at any
// age (an hour of one-second buckets was 72 KiB).
const (
	// meterFine is how many seconds keep one-second buckets: a little more
	// than 5 minutes, so that after aligning to a minute at least the last
	// 5 minutes are always at one second.
	meterFine = 360
	// meterCoarse is the seconds one coarse bucket counts.
	meterCoarse = 60
	// meterMinutes is how many coarse buckets cover an hour not aligned to
	// the minute.
	meterMinutes = meterHistory/meterCoarse + 2
)

// Sample is one interval of a stream's ingest: Seconds long from Time.
type Sample struct {
	Time       time.Time `json:"time"`
	Seconds    int       `json:"seconds"` // how long the interval is
	VideoBytes int64     `json:"video_bytes"`
	AudioBytes int64     `json:"audio_bytes"`
	Frames     int       `json:"frames"` // video frames
	// AudioFrames are the audio frames (an AAC frame is 1024 samples)
	AudioFrames int `json:"audio_frames"`
	Keyframes   int `json:"keyframes"`
}

// Meter counts a stream's ingest for the last hour: in one-second buckets
// for the last meterFine seconds, in one-minute buckets before that. The
// publisher adds; the API and metrics read.
type Meter struct {
	mu      sync.Mutex
	fine    [meterFine]second
	coarse  [meterMinutes]minute
	cur     int64 // unix second of the newest bucket
	first   int64 // unix second of the first packet: older buckets are not the stream's
	lastKey time.Time
	keyIvl  time.Duration

	totalVideo, totalAudio int64
	totalFrames            int64 // video frames
	totalAudioFrames       int64

	now func() time.Time
}

// second is one bucket: what arrived in one unix second.
type second struct {
	sec          uint32 // the unix second it counts; another value means stale
	video, audio uint32 // bytes
	frames, keys uint16 // video frames, keyframes
	aframes      uint16 // audio frames
}

// minute is one coarse bucket: what arrived in one unix minute.
type minute struct {
	min                   uint32 // unix second / meterCoarse; another value means stale
	frames, keys, aframes uint32
	video, audio          uint64 // bytes
}

func (m *Meter) init(clock func() time.Time) {
	m.now = clock
	if m.now == nil {
		m.now = time.Now
	}
}

// slot returns sec's one-second and one-minute buckets for writing, each
// reset if it held an older interval.
func (m *Meter) slot(sec int64) (*second, *minute) {
	b := &m.fine[sec%meterFine]
	if int64(b.sec) != sec {
		*b = second{sec: uint32(sec)}
	}
	mn := sec / meterCoarse
	c := &m.coarse[mn%meterMinutes]
	if int64(c.min) != mn {
		*c = minute{min: uint32(mn)}
	}
	return b, c
}

// get returns sec's one-second bucket, zero unless it holds sec and the
// stream had started by then. Only the last meterFine seconds are kept.
func (m *Meter) get(sec int64) second {
	if m.first == 0 || sec < m.first || sec > m.cur || sec <= m.cur-meterFine {
		return second{}
	}
	if b := m.fine[sec%meterFine]; int64(b.sec) == sec {
		return b
	}
	return second{}
}

// getMinute returns minute mn's bucket, zero unless it holds mn.
func (m *Meter) getMinute(mn int64) minute {
	if m.first == 0 || mn < m.first/meterCoarse || mn > m.cur/meterCoarse ||
		mn <= m.cur/meterCoarse-meterMinutes {
		return minute{}
	}
	if c := m.coarse[mn%meterMinutes]; int64(c.min) == mn {
		return c
	}
	return minute{}
}

// fineFrom is the first second History reports at one second: the first
// whole minute in the one-second tier (at least the last 5 minutes).
func (m *Meter) fineFrom() int64 {
	lo := m.cur - meterFine + 1
	return (lo + meterCoarse - 1) / meterCoarse * meterCoarse
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
	b, c := m.slot(now.Unix())
	switch p.Kind {
	case unit.KindVideo:
		b.video += uint32(n)
		c.video += uint64(n)
		m.totalVideo += n
		if !p.Header && !sequenceEnd(p.Payload) {
			b.frames++
			c.frames++
			m.totalFrames++
			if p.Keyframe {
				b.keys++
				c.keys++
				if !m.lastKey.IsZero() {
					m.keyIvl = now.Sub(m.lastKey)
				}
				m.lastKey = now
			}
		}
	case unit.KindAudio:
		b.audio += uint32(n)
		c.audio += uint64(n)
		m.totalAudio += n
		if !p.Header {
			b.aframes++
			c.aframes++
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

// History returns the stream's ingest between from and to (at most one
// hour back) in steps of res. The last 5 minutes or more are kept at one
// second; before that the meter keeps whole minutes, so that range comes
// as one-minute samples (Seconds 60, whole minutes even where from or to
// cut one) whatever res asks for. res is rounded down to whole seconds, at least one.
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
	fine := m.fineFrom()
	var out []Sample
	for mn := lo / meterCoarse; mn*meterCoarse < fine && mn*meterCoarse <= hi; mn++ {
		c := m.getMinute(mn)
		out = append(out, Sample{
			Time: time.Unix(mn*meterCoarse, 0), Seconds: meterCoarse,
			VideoBytes: int64(c.video), AudioBytes: int64(c.audio),
			Frames: int(c.frames), AudioFrames: int(c.aframes), Keyframes: int(c.keys),
		})
	}
	for sec := max(lo, fine); sec <= hi; sec += step {
		agg := Sample{Time: time.Unix(sec, 0), Seconds: int(step)}
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
