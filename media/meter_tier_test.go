package media

import (
	"testing"
	"time"
	"unsafe"

	"github.com/relaymesh/relaymesh/media/unit"
)

// meterModel is what a test fed a meter: bytes and frames per unix second.
type meterModel struct {
	video, audio, frames, aframes, keys map[int64]int64
}

// meterFeed drives a Meter with an injected clock and records what it fed.
type meterFeed struct {
	m     *Meter
	now   time.Time
	model meterModel
	first int64
}

func newMeterFeed(start time.Time) *meterFeed {
	f := &meterFeed{m: new(Meter), now: start, model: meterModel{
		video: map[int64]int64{}, audio: map[int64]int64{}, frames: map[int64]int64{},
		aframes: map[int64]int64{}, keys: map[int64]int64{},
	}}
	f.m.init(func() time.Time { return f.now })
	return f
}

// video adds a video frame of n bytes at the current time.
func (f *meterFeed) video(n int, key bool) {
	body := make([]byte, n)
	body[0], body[1] = 0x27, 1 // AVC NALU: a frame, not an end of sequence
	if key {
		body[0] = 0x17
	}
	f.m.add(&unit.Packet{Kind: unit.KindVideo, Payload: body, Keyframe: key})
	s := f.now.Unix()
	if f.first == 0 {
		f.first = s
	}
	f.model.video[s] += int64(n)
	f.model.frames[s]++
	if key {
		f.model.keys[s]++
	}
}

func (f *meterFeed) audio(n int) {
	f.m.add(&unit.Packet{Kind: unit.KindAudio, Payload: make([]byte, n)})
	s := f.now.Unix()
	if f.first == 0 {
		f.first = s
	}
	f.model.audio[s] += int64(n)
	f.model.aframes[s]++
}

// run feeds d of media from now on: every second 25 video frames (a
// keyframe each 2 s) and 43 audio frames whose sizes vary with the second,
// so a bucket in the wrong place shows.
func (f *meterFeed) run(d time.Duration) {
	end := f.now.Add(d)
	for f.now.Before(end) {
		s := f.now.Unix()
		for i := 0; i < 25; i++ {
			f.now = time.Unix(s, int64(i)*int64(time.Second)/25)
			f.video(1000+int(s%97)+i, i == 0 && s%2 == 0)
		}
		for i := 0; i < 43; i++ {
			f.now = time.Unix(s, int64(i)*int64(time.Second)/43)
			f.audio(200 + int(s%13))
		}
		f.now = time.Unix(s+1, 0)
	}
}

// sum is what the model holds in the unix seconds [lo, hi].
func (f *meterFeed) sum(lo, hi int64) Sample {
	var s Sample
	for sec := lo; sec <= hi; sec++ {
		s.VideoBytes += f.model.video[sec]
		s.AudioBytes += f.model.audio[sec]
		s.Frames += int(f.model.frames[sec])
		s.AudioFrames += int(f.model.aframes[sec])
		s.Keyframes += int(f.model.keys[sec])
	}
	return s
}

// checkHistory checks History(from, to, res) against the model: the
// samples follow each other without gap or overlap, the last 5 minutes
// are at res, older ones at res or whole minutes, and every sample holds
// exactly what was fed in its interval.
func checkHistory(t *testing.T, f *meterFeed, from, to time.Time, res time.Duration) []Sample {
	t.Helper()
	cur := f.now.Unix()
	hist := f.m.History(from, to, res)
	hi := min(to.Unix(), cur)
	for i, s := range hist {
		lo := s.Time.Unix()
		if i > 0 {
			if prev := hist[i-1]; prev.Time.Unix()+int64(prev.Seconds) != lo {
				t.Fatalf("sample %d at %d follows one at %d of %d s: a gap or an overlap", i, lo, prev.Time.Unix(), prev.Seconds)
			}
		}
		switch {
		case lo+int64(s.Seconds) > cur-300 && s.Seconds != int(res/time.Second):
			t.Errorf("sample at now-%ds is %d s long, want %s: the last 5 minutes are kept at one second", cur-lo, s.Seconds, res)
		case s.Seconds != int(res/time.Second) && s.Seconds != meterCoarse:
			t.Errorf("sample at now-%ds is %d s long, want %s or a minute", cur-lo, s.Seconds, res)
		}
		if s.Seconds == meterCoarse && lo%meterCoarse != 0 {
			t.Errorf("a minute sample starts at %d, not on the minute", lo)
		}
		end := min(lo+int64(s.Seconds)-1, hi)
		if s.Seconds == meterCoarse {
			end = min(lo+meterCoarse-1, cur) // a kept minute is whole
		}
		want := f.sum(lo, end)
		want.Time, want.Seconds = s.Time, s.Seconds
		if s != want {
			t.Errorf("sample at now-%ds (%d s): got %+v, fed %+v", cur-lo, s.Seconds, s, want)
		}
	}
	return hist
}

// TestMeterTiers: a meter keeps one-second buckets for the last 5 minutes
// and whole minutes for the rest of the hour; History, Rates and
// recentBitrate report exactly what was fed at any age of the stream.
func TestMeterTiers(t *testing.T) {
	start := time.Unix(1_700_000_017, 0) // not on a minute
	for _, c := range []struct {
		name string
		feed func(f *meterFeed)
		// the window asked for, back from now
		from, to time.Duration
		res      time.Duration
		// check whole-hour sums: everything fed since the hour's first
		// minute is in the history
		wantAll bool
	}{
		{name: "young stream, all at 1 s", feed: func(f *meterFeed) { f.run(4 * time.Minute) }, from: time.Hour, res: time.Second, wantAll: true},
		{name: "last 5 min at 1 s after 2 h", feed: func(f *meterFeed) { f.run(2 * time.Hour) }, from: 5 * time.Minute, res: time.Second},
		{name: "last 5 min at 5 s after 2 h", feed: func(f *meterFeed) { f.run(2 * time.Hour) }, from: 5 * time.Minute, res: 5 * time.Second},
		{name: "30 min: sums across tiers at 1 s", feed: func(f *meterFeed) { f.run(30 * time.Minute) }, from: time.Hour, res: time.Second, wantAll: true},
		{name: "30 min: sums across tiers at 10 s", feed: func(f *meterFeed) { f.run(30 * time.Minute) }, from: time.Hour, res: 10 * time.Second, wantAll: true},
		{name: "older than an hour", feed: func(f *meterFeed) { f.run(2*time.Hour + 13*time.Second) }, from: 3 * time.Hour, res: time.Second, wantAll: true},
		{name: "an old range only", feed: func(f *meterFeed) { f.run(90 * time.Minute) }, from: 50 * time.Minute, to: 20 * time.Minute, res: 10 * time.Second},
		{name: "paused publisher", feed: func(f *meterFeed) {
			f.run(10 * time.Minute)
			f.now = f.now.Add(17*time.Minute + 3*time.Second) // nothing comes
			f.run(10 * time.Minute)
			f.now = f.now.Add(2 * time.Minute)
			f.run(time.Minute)
		}, from: time.Hour, res: time.Second, wantAll: true},
		{name: "paused over an hour", feed: func(f *meterFeed) {
			f.run(20 * time.Minute)
			f.now = f.now.Add(70 * time.Minute)
			f.run(3 * time.Minute)
		}, from: 2 * time.Hour, res: time.Second, wantAll: true},
		{name: "paused, nothing in the last 5 min", feed: func(f *meterFeed) {
			f.run(40 * time.Minute)
			f.now = f.now.Add(7 * time.Minute)
		}, from: time.Hour, res: 2 * time.Second, wantAll: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newMeterFeed(start)
			c.feed(f)
			now := f.now
			hist := checkHistory(t, f, now.Add(-c.from), now.Add(-c.to), c.res)
			if len(hist) == 0 {
				t.Fatal("no history")
			}
			cur := now.Unix()
			if got := hist[len(hist)-1].Time.Unix(); c.to == 0 && got+int64(hist[len(hist)-1].Seconds) <= cur {
				t.Errorf("the history ends at now-%ds, want up to now", cur-got)
			}
			if c.wantAll {
				var got Sample
				for _, s := range hist {
					got.VideoBytes += s.VideoBytes
					got.AudioBytes += s.AudioBytes
					got.Frames += s.Frames
					got.AudioFrames += s.AudioFrames
					got.Keyframes += s.Keyframes
				}
				lo := max(now.Add(-c.from).Unix(), cur-meterHistory+1)
				if hist[0].Seconds == meterCoarse {
					lo = lo / meterCoarse * meterCoarse
				}
				want := f.sum(lo, cur)
				if got != want {
					t.Errorf("the history sums to %+v, fed %+v since now-%ds", got, want, cur-lo)
				}
				if first := hist[0].Time.Unix(); cur-first > meterHistory+meterCoarse {
					t.Errorf("the history reaches back %d s, more than an hour", cur-first)
				}
			}
			// Rates and recentBitrate: the last whole seconds, the current
			// one excluded
			r := f.m.Rates()
			var n int64
			for s := cur - 5; s < cur; s++ {
				if s >= f.first {
					n++
				}
			}
			var want Rates
			if n > 0 {
				last := f.sum(max(cur-5, f.first), cur-1)
				want.VideoBitrate = last.VideoBytes * 8 / n
				want.AudioBitrate = last.AudioBytes * 8 / n
				want.FPS = float64(last.Frames) / float64(n)
			}
			if r.VideoBitrate != want.VideoBitrate || r.AudioBitrate != want.AudioBitrate || r.FPS != want.FPS {
				t.Errorf("rates %d/%d bit/s %.2f fps, want %d/%d %.2f", r.VideoBitrate, r.AudioBitrate, r.FPS,
					want.VideoBitrate, want.AudioBitrate, want.FPS)
			}
			total := f.sum(f.first, cur)
			if r.BytesIn != total.VideoBytes+total.AudioBytes || r.Frames != int64(total.Frames) || r.AudioFrames != int64(total.AudioFrames) {
				t.Errorf("totals %d bytes %d/%d frames, fed %d %d/%d", r.BytesIn, r.Frames, r.AudioFrames,
					total.VideoBytes+total.AudioBytes, total.Frames, total.AudioFrames)
			}
			last4 := f.sum(max(cur-4, f.first), cur-1)
			var wantBR int64
			if n4 := min(4, cur-f.first); n4 > 0 {
				wantBR = (last4.VideoBytes + last4.AudioBytes) * 8 / n4
			}
			if br := f.m.recentBitrate(4 * time.Second); br != wantBR {
				t.Errorf("recent bitrate %d, want %d", br, wantBR)
			}
		})
	}
}

// TestMeterSecondBoundaries: a packet counts in the unix second it came
// in; the second in progress is in the history but not in the rates.
func TestMeterSecondBoundaries(t *testing.T) {
	base := time.Unix(1_700_000_040, 0)
	for _, c := range []struct {
		name string
		at   []time.Duration // packet times after base, 100 bytes each
		now  time.Duration
		want []int64 // video bytes per second from base, at 1 s
		rate int64   // Rates' video bit rate
	}{
		{name: "last nanosecond and the next second", at: []time.Duration{999_999_999, time.Second}, now: 2 * time.Second, want: []int64{100, 100, 0}, rate: 800},
		{name: "the current second is not in the rates", at: []time.Duration{0, 1500 * time.Millisecond}, now: 1900 * time.Millisecond, want: []int64{100, 100}, rate: 800},
		{name: "on a minute boundary", at: []time.Duration{19 * time.Second, 20 * time.Second, 20*time.Second + 1}, now: 21 * time.Second,
			want: append(make([]int64, 19), 100, 200, 0), rate: 300 * 8 / 2}, // the stream started 2 s ago,
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newMeterFeed(base)
			for _, d := range c.at {
				f.now = base.Add(d)
				f.video(100, false)
			}
			f.now = base.Add(c.now)
			hist := checkHistory(t, f, base, f.now, time.Second)
			var got []int64
			for _, s := range hist {
				got = append(got, s.VideoBytes)
			}
			if len(got) != len(c.want) {
				t.Fatalf("history %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("history %v, want %v", got, c.want)
				}
			}
			if r := f.m.Rates(); r.VideoBitrate != c.rate {
				t.Errorf("video bit rate %d, want %d", r.VideoBitrate, c.rate)
			}
		})
	}
}

// meterSink keeps TestMeterMemory's meters on the heap.
var meterSink *Meter

// TestMeterMemory: a meter is one fixed block under 10 KiB that feeding
// never grows: a new meter fed for 2 h of injected time is one allocation
// of unsafe.Sizeof(Meter{}) bytes. An hour of one-second buckets in
// 5-minute pages was 12 more allocations, 72 KiB per stream.
func TestMeterMemory(t *testing.T) {
	const budget = 10 << 10
	if sz := unsafe.Sizeof(Meter{}); sz > budget {
		t.Errorf("a Meter is %d bytes, want at most %d", sz, budget)
	} else {
		t.Logf("a Meter is %d bytes", sz)
	}
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	video := &unit.Packet{Kind: unit.KindVideo, Payload: []byte{0x27, 1, 0, 0, 0, 9}}
	audio := &unit.Packet{Kind: unit.KindAudio, Payload: []byte{0xaf, 1, 9}}
	// one run is a new meter fed two hours of one video and one audio
	// packet a second
	allocs := testing.AllocsPerRun(3, func() {
		m := new(Meter)
		meterSink = m
		m.init(clock)
		for i := 0; i < 7200; i++ {
			now = now.Add(time.Second)
			m.add(video)
			m.add(audio)
		}
		m.Rates()
		m.History(now.Add(-time.Hour), now, time.Second)
	})
	// History's result is the caller's: count it apart
	hist := testing.AllocsPerRun(3, func() { meterSink.History(now.Add(-time.Hour), now, time.Second) })
	if got := allocs - hist; got != 1 {
		t.Errorf("a meter fed for 2 h takes %.0f allocations, want 1 (the Meter: its buckets are its own)", got)
	}
}
