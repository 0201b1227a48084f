package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
)

func viewOf(st *media.Stream, srtStats func(key string) []srt.ConnStats) client.Stream {
	c := st.Codecs()
	r := st.Meter.Rates()
	v := client.Stream{
		Name: st.Key(), Codecs: c, Video: c.Video, Audio: c.Audio, Width: c.Width, Height: c.Height,
		FPS: r.FPS, VideoBitrate: r.VideoBitrate, AudioBitrate: r.AudioBitrate,
		KeyInterval: r.KeyInterval.Seconds(), BytesIn: r.BytesIn, Frames: r.Frames, AudioFrames: r.AudioFrames,
		Readers: st.Readers(), UptimeSeconds: int64(time.Since(st.Created()).Seconds()),
	}
	v.ReaderCount = len(v.Readers)
	v.Skips, v.Dropped = st.Skips()
	v.CCErrors = st.ContinuityErrors()
	if p, ok := st.Publisher(); ok {
		v.Publisher = &p
	}
	if srtStats != nil {
		v.SRT = srtStats(st.Key())
	}
	return v
}

func (s *Server) streams(w http.ResponseWriter, r *http.Request) {
	out := client.StreamList{Streams: []client.Stream{}}
	for _, st := range s.d.Streams.Streams() {
		out.Streams = append(out.Streams, viewOf(st, s.d.Streams.SRTStats))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *media.Stream {
	key := r.PathValue("app") + "/" + r.PathValue("name")
	st := s.d.Streams.Stream(key)
	if st == nil {
		writeError(w, http.StatusNotFound, "not_found", "no live stream "+key, "")
	}
	return st
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	if st := s.lookup(w, r); st != nil {
		writeJSON(w, http.StatusOK, viewOf(st, s.d.Streams.SRTStats))
	}
}

// streamStats is the uplink monitor: frame rate and bit rate over the last
// hour at 1 s to 10 s resolution.
func (s *Server) streamStats(w http.ResponseWriter, r *http.Request) {
	st := s.lookup(w, r)
	if st == nil {
		return
	}
	q := r.URL.Query()
	now := time.Now()
	from, to := now.Add(-5*time.Minute), now
	var err error
	parse := func(name string, def time.Time) time.Time {
		v := q.Get(name)
		if v == "" || err != nil {
			return def
		}
		var t time.Time
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			var secs int64
			if _, e := fmt.Sscan(v, &secs); e == nil {
				err = nil
				return time.Unix(secs, 0)
			}
			err = fmt.Errorf("%s: want RFC 3339 time or unix seconds, got %q", name, v)
		}
		return t
	}
	from, to = parse("from", from), parse("to", to)
	res := time.Second
	if v := q.Get("resolution"); v != "" && err == nil {
		if res, err = time.ParseDuration(v); err != nil || res < time.Second || res > 10*time.Second {
			err = fmt.Errorf("resolution: want 1s..10s, got %q", v)
		}
	}
	if err == nil && (to.Before(from) || now.Sub(from) > time.Hour+time.Minute) {
		err = fmt.Errorf("from/to: the window must lie within the last hour and from must not be after to")
	}
	if err != nil {
		field := strings.SplitN(err.Error(), ":", 2)[0]
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), field)
		return
	}
	pts := []client.StatsPoint{}
	for _, smp := range st.Meter.History(from, to, res) {
		// older than the last 5 minutes the meter keeps whole minutes:
		// a point is as long as what was kept
		secs := float64(smp.Seconds)
		pts = append(pts, client.StatsPoint{
			Time: smp.Time, Seconds: secs, FPS: float64(smp.Frames) / secs,
			VideoBitrate: int64(float64(smp.VideoBytes*8) / secs), AudioBitrate: int64(float64(smp.AudioBytes*8) / secs),
		})
	}
	writeJSON(w, http.StatusOK, client.StreamStats{Stream: st.Key(), ResolutionSeconds: res.Seconds(), Points: pts})
}
