package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
)

// apiServer is the JSON API, /metrics and /healthz.
type apiServer struct {
	a    *Agent
	ln   net.Listener
	srv  *http.Server
	mux  *http.ServeMux
	once sync.Once
}

func newAPI(a *Agent, cfg *config.Config) (*apiServer, error) {
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", cfg.API.Listen, err)
	}
	s := &apiServer{a: a, ln: ln, mux: http.NewServeMux()}
	s.srv = &http.Server{
		Handler:           s.authorize(s.mux),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /v1/streams", s.streams)
	s.mux.HandleFunc("GET /v1/streams/{app}/{name}", s.stream)
	s.mux.HandleFunc("GET /v1/streams/{app}/{name}/stats", s.streamStats)
	s.routesCluster()
	s.routesOps()
	s.routesObjects()
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path, "")
	})
	return s, nil
}

func (s *apiServer) Addr() net.Addr { return s.ln.Addr() }

func (s *apiServer) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *apiServer) Close() error {
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		if err != nil {
			err = s.srv.Close()
		}
		// the listener too: http.Server closes only listeners it served,
		// and a failed start or a refused reload never served this one
		s.ln.Close()
	})
	return err
}

// apiError is the body of every error answer.
type apiError = client.Problem

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, apiError{Code: code, Message: msg, Field: field})
}

// writeJSON answers v with its secrets masked (maskAnswer): every answer
// but locate's signed URLs (writeJSONUnmasked).
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONUnmasked(w, status, maskAnswer(v))
}

func writeJSONUnmasked(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *apiServer) healthz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.a.stopping:
		writeJSON(w, http.StatusServiceUnavailable, client.Health{Status: "stopping"})
	default:
		if s.beyondLoopback() && requestRole(r) < roleRead {
			// liveness for probes that carry no token; details need one
			writeJSON(w, http.StatusOK, client.Health{Status: "ok"})
			return
		}
		cfg := s.a.config()
		writeJSON(w, http.StatusOK, client.Health{
			Status: "ok", Node: cfg.Node.ResolveName(), Role: string(cfg.Node.Role), Version: Version,
			UptimeSeconds: int64(time.Since(s.a.started).Seconds()),
		})
	}
}

func viewOf(st *media.Stream, srtStats func(key string) []srt.ConnStats) client.Stream {
	c := st.Codecs()
	r := st.Meter.Rates()
	v := client.Stream{
		Name: st.Key(), Codecs: c, Video: c.Video, Audio: c.Audio, Width: c.Width, Height: c.Height,
		FPS: r.FPS, VideoBitrate: r.VideoBitrate, AudioBitrate: r.AudioBitrate,
		KeyInterval: r.KeyInterval.Seconds(), BytesIn: r.BytesIn, Frames: r.Frames,
		Readers: st.Readers(), UptimeSeconds: int64(time.Since(st.Created()).Seconds()),
	}
	v.ReaderCount = len(v.Readers)
	v.Skips, v.Dropped = st.Skips()
	if p, ok := st.Publisher(); ok {
		v.Publisher = &p
	}
	if srtStats != nil {
		v.SRT = srtStats(st.Key())
	}
	return v
}

func (s *apiServer) streams(w http.ResponseWriter, r *http.Request) {
	out := client.StreamList{Streams: []client.Stream{}}
	for _, st := range s.a.hub.Streams() {
		out.Streams = append(out.Streams, viewOf(st, s.a.srtStats))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *apiServer) lookup(w http.ResponseWriter, r *http.Request) *media.Stream {
	key := r.PathValue("app") + "/" + r.PathValue("name")
	st := s.a.hub.Stream(key)
	if st == nil {
		writeError(w, http.StatusNotFound, "not_found", "no live stream "+key, "")
	}
	return st
}

func (s *apiServer) stream(w http.ResponseWriter, r *http.Request) {
	if st := s.lookup(w, r); st != nil {
		writeJSON(w, http.StatusOK, viewOf(st, s.a.srtStats))
	}
}

// streamStats is the uplink monitor: frame rate and bit rate over the last
// hour at 1 s to 10 s resolution.
func (s *apiServer) streamStats(w http.ResponseWriter, r *http.Request) {
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
	secs := res.Seconds()
	pts := []client.StatsPoint{}
	for _, smp := range st.Meter.History(from, to, res) {
		pts = append(pts, client.StatsPoint{
			Time: smp.Time, FPS: float64(smp.Frames) / secs,
			VideoBitrate: int64(float64(smp.VideoBytes*8) / secs), AudioBitrate: int64(float64(smp.AudioBytes*8) / secs),
		})
	}
	writeJSON(w, http.StatusOK, client.StreamStats{Stream: st.Key(), ResolutionSeconds: secs, Points: pts})
}
