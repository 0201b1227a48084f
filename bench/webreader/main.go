// Command webreader is a light browser-protocol load client for the
// per-reader cost of a node's HLS and WebRTC outputs: one process opens N
// LL-HLS readers (-proto hls: poll the media playlist with blocking
// reload, _HLS_msn/_HLS_part, and fetch every new part and the init
// section, as hls.js does, without demuxing) or N WHEP sessions (-proto
// whep: a pion peer per session, recvonly video and, with -audio, Opus
// audio, reading and counting RTP), then measures the server with -pid:
// CPU seconds (utime+stime from /proc/PID/stat) of the server process
// alone and of its process tree (the one ffmpeg AAC->Opus child an AAC
// stream's WHEP readers share), over an idle phase (no reader) and a
// window with all N playing, and the max VmRSS of each phase. It prints
// one JSON object.
//
//	webreader -proto hls -url http://127.0.0.1:8080/live/s/index.m3u8 -n 50 -pid 1234
//	webreader -proto whep -url http://127.0.0.1:8080/live/s/whep -n 50 -audio=false -pid 1234
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relaymesh/relaymesh/bench/benchutil"
	"github.com/relaymesh/relaymesh/bench/procstat"
)

// reader is one playing client's counters.
type reader struct {
	bytes atomic.Uint64
	units atomic.Uint64 // HLS parts or RTP packets
	done  atomic.Bool
	err   atomic.Pointer[string]
}

func (r *reader) fail(err error) {
	s := err.Error()
	r.err.Store(&s)
	r.done.Store(true)
}

// Phase is the server's cost over one phase.
type Phase struct {
	Seconds       float64 `json:"seconds"`
	CPUSelfSec    float64 `json:"cpu_self_seconds"` // the server process alone
	CPUTreeSec    float64 `json:"cpu_tree_seconds"` // with its children (ffmpeg transcoders)
	RSSSelfMaxKiB uint64  `json:"rss_self_max_kib"`
	RSSTreeMaxKiB uint64  `json:"rss_tree_max_kib"`
	Children      int     `json:"children"` // processes under the server at the end
}

// Result is what webreader prints.
type Result struct {
	Proto   string         `json:"proto"`
	Audio   bool           `json:"audio"`
	URL     string         `json:"url"`
	Readers int            `json:"readers"`
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	Dropped int            `json:"dropped"`
	Errors  map[string]int `json:"errors,omitempty"`
	Bytes   uint64         `json:"bytes"`
	Units   uint64         `json:"units"` // parts (hls) or RTP packets (whep) in the window
	PerRdr  float64        `json:"mbit_per_s_per_reader"`
	Load    string         `json:"loadavg"`
	Idle    *Phase         `json:"idle,omitempty"`
	Window  *Phase         `json:"window,omitempty"`
	// per reader: (window - idle rate x window) / (readers x minutes)
	CPUSelfPerRdrMin float64 `json:"cpu_self_s_per_reader_minute"`
	CPUTreePerRdrMin float64 `json:"cpu_tree_s_per_reader_minute"`
	RSSSelfPerRdr    float64 `json:"rss_self_kib_per_reader"`
	RSSTreePerRdr    float64 `json:"rss_tree_kib_per_reader"`
}

func main() {
	proto := flag.String("proto", "hls", "hls or whep")
	u := flag.String("url", "", "http://HOST:PORT/APP/NAME/index.m3u8 (hls) or .../whep (whep)")
	n := flag.Int("n", 10, "readers")
	audio := flag.Bool("audio", true, "whep: offer Opus audio too (the server runs one AAC->Opus ffmpeg for the stream)")
	idle := flag.Duration("idle", 5*time.Second, "server-only phase before the readers")
	warmup := flag.Duration("warmup", 8*time.Second, "after the last reader started, before the window")
	dur := flag.Duration("duration", 20*time.Second, "measurement window")
	parallel := flag.Int("parallel", 10, "readers started at once")
	pid := flag.Int("pid", 0, "server PID to measure")
	flag.Parse()
	if *u == "" || (*proto != "hls" && *proto != "whep") {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := Result{Proto: *proto, Audio: *audio && *proto == "whep", URL: *u, Readers: *n}
	if *pid > 0 {
		p, err := measure(ctx, *pid, *idle)
		if err != nil {
			fatal(err)
		}
		res.Idle = &p
	}
	var start func(ctx context.Context, r *reader) error
	switch *proto {
	case "hls":
		start = func(ctx context.Context, r *reader) error { go playHLS(ctx, *u, r); return nil }
	case "whep":
		w, err := newWHEP(*audio)
		if err != nil {
			fatal(err)
		}
		start = func(ctx context.Context, r *reader) error { return w.play(ctx, *u, r) }
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers := make([]*reader, *n)
	sem := make(chan struct{}, max(1, *parallel))
	var wg sync.WaitGroup
	for i := range readers {
		readers[i] = &reader{}
		sem <- struct{}{}
		wg.Add(1)
		go func(r *reader) {
			defer func() { <-sem; wg.Done() }()
			if err := start(rctx, r); err != nil {
				r.fail(err)
			}
		}(readers[i])
	}
	wg.Wait()
	if !benchutil.Sleep(ctx, *warmup) {
		os.Exit(130)
	}
	b0, u0 := sum(readers)
	var win Phase
	if *pid > 0 {
		p, err := measure(ctx, *pid, *dur)
		if err != nil {
			fatal(err)
		}
		win = p
		res.Window = &win
	} else if !benchutil.Sleep(ctx, *dur) {
		os.Exit(130)
	}
	b1, u1 := sum(readers)
	res.Bytes, res.Units = b1-b0, u1-u0
	res.Errors = map[string]int{}
	for _, r := range readers {
		switch {
		case r.err.Load() != nil && r.bytes.Load() == 0:
			res.Failed++
			res.Errors[short(*r.err.Load())]++
		case r.done.Load():
			res.Dropped++
			if e := r.err.Load(); e != nil {
				res.Errors[short(*e)]++
			}
		default:
			res.OK++
		}
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	if *n > 0 {
		res.PerRdr = benchutil.Round(float64(res.Bytes)*8/1e6/dur.Seconds()/float64(*n), 3)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		res.Load = strings.Join(f[:3], " ")
	}
	if res.Idle != nil && *n > 0 {
		i, w := res.Idle, res.Window
		mins := w.Seconds / 60 * float64(*n)
		res.CPUSelfPerRdrMin = benchutil.Round((w.CPUSelfSec-i.CPUSelfSec/i.Seconds*w.Seconds)/mins, 4)
		res.CPUTreePerRdrMin = benchutil.Round((w.CPUTreeSec-i.CPUTreeSec/i.Seconds*w.Seconds)/mins, 4)
		res.RSSSelfPerRdr = benchutil.PerReader(w.RSSSelfMaxKiB, i.RSSSelfMaxKiB, *n)
		res.RSSTreePerRdr = benchutil.PerReader(w.RSSTreeMaxKiB, i.RSSTreeMaxKiB, *n)
	}
	cancel()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func sum(rs []*reader) (b, u uint64) {
	for _, r := range rs {
		b += r.bytes.Load()
		u += r.units.Load()
	}
	return b, u
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "webreader:", err)
	os.Exit(1)
}

// self samples the server process alone (procstat.SampleTree adds its children).
func self(pid int) (procstat.Sample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procstat.Sample{}, err
	}
	_, t, st, err := procstat.ParseStat(b)
	if err != nil {
		return procstat.Sample{}, err
	}
	s := procstat.Sample{CPUTicks: t, SysTicks: st, PIDs: 1}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		s.RSSKiB, s.HWMKiB = procstat.ParseStatus(b)
	}
	return s, nil
}

// measure samples the server alone and its tree once a second for d.
func measure(ctx context.Context, pid int, d time.Duration) (Phase, error) {
	s0, err := self(pid)
	if err != nil {
		return Phase{}, err
	}
	t0s, err := procstat.SampleTree(pid)
	if err != nil {
		return Phase{}, err
	}
	start := time.Now()
	var p Phase
	var s1, t1 procstat.Sample
	for time.Since(start) < d {
		if !benchutil.Sleep(ctx, min(time.Second, d-time.Since(start))) {
			return Phase{}, ctx.Err()
		}
		if s1, err = self(pid); err != nil {
			return Phase{}, err
		}
		if t1, err = procstat.SampleTree(pid); err != nil {
			return Phase{}, err
		}
		p.RSSSelfMaxKiB = max(p.RSSSelfMaxKiB, s1.RSSKiB)
		p.RSSTreeMaxKiB = max(p.RSSTreeMaxKiB, t1.RSSKiB)
	}
	p.Seconds = benchutil.Round(time.Since(start).Seconds(), 3)
	p.CPUSelfSec = benchutil.Round(benchutil.TicksToSec(s1.CPUTicks-s0.CPUTicks), 3)
	// children that ended in the window take their ticks with them; the
	// tree figure is a lower bound then (the WHEP readers hold theirs)
	if t1.CPUTicks > t0s.CPUTicks {
		p.CPUTreeSec = benchutil.Round(benchutil.TicksToSec(t1.CPUTicks-t0s.CPUTicks), 3)
	}
	p.Children = t1.PIDs - 1
	return p, nil
}
