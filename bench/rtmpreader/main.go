// Command rtmpreader is a light RTMP load client for fan-out benchmarks:
// one process opens N play connections to rtmp://HOST:PORT/APP/NAME, does
// the handshake, connect, createStream and play, then only reads, counts
// and acknowledges bytes, without parsing media. It prints one JSON object
// with the totals.
//
// With -pid it also measures the server: CPU time (utime+stime of the
// process and its children, from /proc) over the measurement window, and
// VmRSS before any reader connected and with all N connected.
//
//	rtmpreader -url rtmp://127.0.0.1:1935/live/bench -n 200 -warmup 3s -duration 20s -pid 1234
package main

import (
	"github.com/relaymesh/relaymesh/bench/benchutil"
	"github.com/relaymesh/relaymesh/bench/procstat"
	"github.com/relaymesh/relaymesh/bench/rtmpdial"

	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	url         string
	n           int
	duration    time.Duration
	warmup      time.Duration
	idle        time.Duration
	waitLive    time.Duration
	preroll     time.Duration
	dialTimeout time.Duration
	parallel    int
	pid         int
	label       string
	mark        string
	pprof       string
	streams     int
	fps         float64
	readPause   time.Duration
}

// Result is what the reader prints.
type Result struct {
	Label      string         `json:"label,omitempty"`
	URL        string         `json:"url"`
	Readers    int            `json:"readers"`
	OK         int            `json:"ok"`
	Failed     int            `json:"failed"`
	Dropped    int            `json:"dropped"` // connected, then ended before the window closed
	Errors     map[string]int `json:"errors,omitempty"`
	ConnectSec float64        `json:"connect_seconds"`
	WindowSec  float64        `json:"window_seconds"`
	Bytes      uint64         `json:"bytes"` // received by all readers in the window
	Mbps       float64        `json:"mbit_per_s"`
	PerReader  float64        `json:"mbit_per_s_per_reader"`
	PerSecond  []float64      `json:"per_second_mbit"`
	Server     *ServerStats   `json:"server,omitempty"`
	Frames     *FrameStats    `json:"frames,omitempty"` // with -streams
	// the reader process's own CPU in the window and its RSS at the end
	SelfCPUSeconds float64 `json:"self_cpu_seconds"`
	SelfRSSKiB     uint64  `json:"self_rss_kib"`
}

// FrameStats is what the readers of -streams got in the window: video
// frames against -fps x window seconds.
type FrameStats struct {
	Streams     int     `json:"streams"`
	PerStream   int     `json:"readers_per_stream"`
	FPS         float64 `json:"fps"`
	Expected    float64 `json:"expected_per_reader"`
	FullRate    int     `json:"readers_full_rate"` // got >= 95 % of Expected
	Total       uint64  `json:"frames"`
	MinRatio    float64 `json:"min_ratio"`
	MedianRatio float64 `json:"median_ratio"`
	// the readers below 95 %, worst first (at most 10): stream name and ratio
	Short []ShortReader `json:"short,omitempty"`
}

// ShortReader is one reader that got less than the full rate.
type ShortReader struct {
	Stream string  `json:"stream"`
	Ratio  float64 `json:"ratio"`
}

// ServerStats is the server's cost, measured from /proc.
type ServerStats struct {
	PID            int     `json:"pid"`
	Processes      int     `json:"processes"`
	IdleCPUPct     float64 `json:"idle_cpu_percent"` // with the publisher and no reader
	benchutil.Cost         // in the window
	RSSStartKiB    uint64  `json:"rss_start_kib"` // once the stream is live, before the preroll
	RSS0KiB        uint64  `json:"rss0_kib"`      // max over the idle phase (no reader)
	RSSNKiB        uint64  `json:"rssN_kib"`      // max over the window (N readers)
	AnonNKiB       uint64  `json:"anonN_kib"`     // max RssAnon over the window
	HWMKiB         uint64  `json:"hwm_kib"`
	RSSPerReader   float64 `json:"rss_kib_per_reader"` // (rssN - rss0) / N
	// Go servers with -pprof: live heap and goroutine stacks after a
	// forced GC, at the end of the idle phase and of the window.
	Go0          *goMem  `json:"go0,omitempty"`
	GoN          *goMem  `json:"goN,omitempty"`
	GoPerReader  float64 `json:"go_live_kib_per_reader,omitempty"` // (heap_alloc+stack_inuse) delta / N
	GoroutinesPR float64 `json:"goroutines_per_reader,omitempty"`
	GoErr        string  `json:"go_error,omitempty"`
	// RSS sampled every second over the idle phase and the window.
	RSSIdle   []uint64 `json:"rss_idle_kib"`
	RSSWindow []uint64 `json:"rss_window_kib"`
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "rtmp://127.0.0.1:1935/live/bench", "stream to play, rtmp://HOST[:PORT]/APP/NAME")
	flag.IntVar(&o.n, "n", 50, "number of play connections")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "time between the last connection and the window")
	flag.DurationVar(&o.idle, "idle", 2*time.Second, "with -pid: measure the server's CPU and RSS this long before connecting")
	flag.DurationVar(&o.waitLive, "wait-live", 0, "first wait up to this long until one probe connection receives media")
	flag.DurationVar(&o.preroll, "preroll", 0, "with -wait-live: keep the probe reading this long before the idle phase, so the server's buffers reach steady state")
	flag.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "timeout of dial, handshake and play")
	flag.IntVar(&o.parallel, "parallel", 32, "connections opened at once")
	flag.IntVar(&o.pid, "pid", 0, "server process to measure (0: none)")
	flag.StringVar(&o.label, "label", "", "label copied into the JSON")
	flag.StringVar(&o.pprof, "pprof", "", "base URL of a Go server's net/http/pprof (http://HOST:PORT): also report its heap and stacks after a forced GC")
	flag.IntVar(&o.streams, "streams", 0, "play this many streams, -n readers each, %d in -url replaced by 0..streams-1, and count video frames per reader")
	flag.DurationVar(&o.readPause, "read-pause", 0, "with -streams: after draining its socket a reader waits this long before the next read (fewer reads when many streams share a core)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the reader to this file")
	flag.Float64Var(&o.fps, "fps", 30, "with -streams: the video frame rate a reader at the full rate gets")
	flag.StringVar(&o.mark, "mark", "", "create this file when the measurement window starts (to start a profiler)")
	flag.Parse()
	if o.n < 0 || o.parallel < 1 || o.duration <= 0 {
		fmt.Fprintln(os.Stderr, "rtmpreader: -n must be >= 0, -parallel >= 1, -duration > 0")
		os.Exit(2)
	}
	if o.streams < 0 || o.streams > 0 && (!strings.Contains(o.url, "%d") || o.fps <= 0) {
		fmt.Fprintf(os.Stderr, "rtmpreader: -streams needs %%d in -url and -fps > 0\n")
		os.Exit(2)
	}
	t, err := rtmpdial.ParseURL(rtmpdial.StreamURL(o.url, 0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpreader:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	stopProfile, err := benchutil.StartCPUProfile(*cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpreader:", err)
		os.Exit(2)
	}
	res, err := run(ctx, o, t)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpreader:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		os.Exit(1)
	}
	if res.OK == 0 && o.n > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, t rtmpdial.Target) (*Result, error) {
	// targets[i] is what player i plays: t alone, or with -streams the
	// o.n players of each stream in turn
	targets := []rtmpdial.Target{t}
	if o.streams > 0 {
		targets = make([]rtmpdial.Target, o.streams)
		for i := range targets {
			var err error
			if targets[i], err = rtmpdial.ParseURL(rtmpdial.StreamURL(o.url, i)); err != nil {
				return nil, err
			}
		}
		o.n *= o.streams
	}
	res := &Result{Label: o.label, URL: o.url, Readers: o.n, Errors: map[string]int{}}
	var rssStart uint64
	if o.waitLive > 0 {
		probe, err := waitLive(ctx, t, o.waitLive, o.dialTimeout)
		if err != nil {
			return nil, err
		}
		if o.pid > 0 {
			if s, err := procstat.SampleTree(o.pid); err == nil {
				rssStart = s.RSSKiB
			}
		}
		if o.preroll > 0 {
			pctx, cancel := context.WithTimeout(ctx, o.preroll)
			probe.run(pctx, make([]byte, 32<<10))
			cancel()
			if ctx.Err() != nil {
				probe.nc.Close()
				return nil, ctx.Err()
			}
		}
		probe.nc.Close()
	}
	var srv *ServerStats
	if o.pid > 0 {
		idle, err := benchutil.MeasureIdle(ctx, o.pid, o.idle)
		if err != nil {
			return nil, err
		}
		if rssStart == 0 {
			rssStart = idle.Start.RSSKiB
		}
		srv = &ServerStats{PID: o.pid, Processes: idle.Start.PIDs, RSSStartKiB: rssStart,
			RSS0KiB: idle.RSSMaxKiB, RSSIdle: idle.RSS, IdleCPUPct: round(idle.CPUPct, 1)}
		if o.pprof != "" {
			if m, err := readGoMem(ctx, o.pprof); err != nil {
				srv.GoErr = err.Error()
			} else {
				srv.Go0 = m
			}
		}
	}

	// Connect N players, o.parallel at a time.
	start := time.Now()
	players := make([]*player, o.n)
	errs := make([]error, o.n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.parallel)
	for i := range o.n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			si := i * len(targets) / max(o.n, 1)
			players[i], errs[i] = dial(ctx, targets[si], o.dialTimeout)
			if players[i] != nil {
				players[i].stream = si
			}
		}()
	}
	wg.Wait()
	res.ConnectSec = time.Since(start).Seconds()
	for _, err := range errs {
		if err != nil {
			res.Failed++
			res.Errors[err.Error()]++
		}
	}

	readCtx, stopReading := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	var live []*player
	for _, p := range players {
		if p == nil {
			continue
		}
		live = append(live, p)
		res.OK++
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if o.streams > 0 {
				p.runFrames(readCtx, o.readPause)
				return
			}
			buf := make([]byte, 32<<10)
			p.run(readCtx, buf)
		}()
	}
	defer func() {
		stopReading()
		rwg.Wait()
		for _, p := range live {
			p.nc.Close()
		}
	}()
	total := func() uint64 {
		var n uint64
		for _, p := range live {
			n += p.bytes.Load()
		}
		return n
	}

	if !sleep(ctx, o.warmup) {
		return nil, ctx.Err()
	}
	var c0 procstat.Sample
	if srv != nil {
		var err error
		if c0, err = procstat.SampleTree(o.pid); err != nil {
			return nil, err
		}
	}
	frames := func() []uint64 {
		f := make([]uint64, len(live))
		for i, p := range live {
			f[i] = p.frames.Load()
		}
		return f
	}
	self0, _ := procstat.SampleTree(os.Getpid())
	f0 := frames()
	b0, t0 := total(), time.Now()
	if o.mark != "" {
		if err := os.WriteFile(o.mark, nil, 0o644); err != nil {
			return nil, err
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(o.duration)
	defer end.Stop()
	last := b0
loop:
	for {
		select {
		case <-tick.C:
			if srv != nil {
				if sm, err := procstat.SampleTree(o.pid); err == nil {
					srv.RSSWindow = append(srv.RSSWindow, sm.RSSKiB)
					srv.RSSNKiB = max(srv.RSSNKiB, sm.RSSKiB)
					srv.AnonNKiB = max(srv.AnonNKiB, sm.AnonKiB)
				}
			}
			b := total()
			res.PerSecond = append(res.PerSecond, round(float64(b-last)*8/1e6, 2))
			last = b
		case <-end.C:
			break loop
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b1, f1 := total(), frames()
	window := time.Since(t0).Seconds()
	if self1, err := procstat.SampleTree(os.Getpid()); err == nil {
		res.SelfCPUSeconds = round(benchutil.TicksToSec(self1.CPUTicks-self0.CPUTicks), 3)
		res.SelfRSSKiB = self1.RSSKiB
	}
	if o.streams > 0 {
		res.Frames = frameStats(o, targets, live, f0, f1, window)
	}
	if srv != nil {
		c1, err := procstat.SampleTree(o.pid)
		if err != nil {
			return nil, err
		}
		srv.Processes = c1.PIDs
		srv.Cost = benchutil.WindowCost(c0, c1, window, b1-b0)
		srv.RSSNKiB, srv.HWMKiB = max(srv.RSSNKiB, c1.RSSKiB), c1.HWMKiB
		srv.AnonNKiB = max(srv.AnonNKiB, c1.AnonKiB)
		if o.pprof != "" {
			if m, err := readGoMem(ctx, o.pprof); err != nil {
				srv.GoErr = err.Error()
			} else {
				srv.GoN = m
			}
			if srv.Go0 != nil && srv.GoN != nil && o.n > 0 {
				live := func(m *goMem) float64 { return float64(m.HeapAlloc + m.StackInuse) }
				srv.GoPerReader = round((live(srv.GoN)-live(srv.Go0))/1024/float64(o.n), 1)
				srv.GoroutinesPR = round(float64(srv.GoN.Goroutines-srv.Go0.Goroutines)/float64(o.n), 2)
			}
		}
		srv.RSSPerReader = benchutil.PerReader(srv.RSSNKiB, srv.RSS0KiB, o.n)
		res.Server = srv
	}
	for _, p := range live {
		if p.done.Load() {
			res.Dropped++
			if e := p.err.Load(); e != nil {
				res.Errors[(*e).Error()]++
			}
		}
	}
	res.Bytes = b1 - b0
	res.WindowSec = round(window, 3)
	res.Mbps = round(float64(res.Bytes)*8/1e6/window, 2)
	if res.OK > 0 {
		res.PerReader = round(res.Mbps/float64(res.OK), 3)
	}
	res.ConnectSec = round(res.ConnectSec, 3)
	if len(res.Errors) > 8 { // keep the JSON short: the 8 most frequent
		type kv struct {
			k string
			v int
		}
		var all []kv
		for k, v := range res.Errors {
			all = append(all, kv{k, v})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
		res.Errors = map[string]int{}
		for _, e := range all[:8] {
			res.Errors[e.k] = e.v
		}
	}
	return res, nil
}

// frameStats compares the video frames each player got between f0 and
// f1 with the full rate. Players that failed to connect count as zero.
func frameStats(o options, targets []rtmpdial.Target, live []*player, f0, f1 []uint64, window float64) *FrameStats {
	fs := &FrameStats{Streams: o.streams, PerStream: o.n / max(o.streams, 1), FPS: o.fps, Expected: round(o.fps*window, 1)}
	ratios := make([]float64, 0, o.n)
	for i, p := range live {
		got := f1[i] - f0[i]
		fs.Total += got
		r := float64(got) / (o.fps * window)
		ratios = append(ratios, r)
		if r < 0.95 {
			fs.Short = append(fs.Short, ShortReader{targets[p.stream].Name, round(r, 3)})
		}
	}
	for range o.n - len(live) {
		ratios = append(ratios, 0)
	}
	fs.FullRate = o.n - len(fs.Short) - (o.n - len(live))
	if len(ratios) > 0 {
		sort.Float64s(ratios)
		fs.MinRatio, fs.MedianRatio = round(ratios[0], 3), round(ratios[len(ratios)/2], 3)
	}
	sort.Slice(fs.Short, func(i, j int) bool { return fs.Short[i].Ratio < fs.Short[j].Ratio })
	fs.Short = fs.Short[:min(len(fs.Short), 10)]
	return fs
}

// waitLive polls with one probe connection until it gets media and
// returns that connection.
func waitLive(ctx context.Context, t rtmpdial.Target, wait, dialTimeout time.Duration) (*player, error) {
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		p, err := dial(ctx, t, min(dialTimeout, time.Until(deadline)))
		if err == nil {
			// Play.Start alone is not enough for a server that answers
			// before the stream exists: wait for the first media bytes.
			p.nc.SetReadDeadline(time.Now().Add(min(3*time.Second, time.Until(deadline))))
			if _, err = p.br.Peek(1); err == nil {
				p.nc.SetReadDeadline(time.Time{})
				return p, nil
			}
			p.nc.Close()
		}
		last = err
		if !sleep(ctx, 250*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("stream %s did not go live within %s: %v", t.TCURL+"/"+t.Name, wait, last)
}

var (
	sleep = benchutil.Sleep
	round = benchutil.Round
)
