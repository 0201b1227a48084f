// Command srtreader is a light SRT load client for fan-out benchmarks: one
// process opens N SRT caller connections (libsrt) to a listener, reads the
// MPEG-TS payloads, counts bytes and checks the TS continuity counters,
// and at the end prints one JSON object with the totals, the spread of
// per-reader bitrates and the SRT receiver statistics (loss, retransmits,
// drops) summed over the readers for the measurement window.
//
// With -pid it also measures the server: CPU time (utime+stime of the
// process and its children, from /proc) over the window, and VmRSS with
// the publisher only and with all N readers.
//
//	srtreader -url 'srt://127.0.0.1:8890?streamid=read:live/b' -n 50 -warmup 5s -duration 15s -pid 1234
package main

import (
	"github.com/relaymesh/relaymesh/bench/benchutil"
	"github.com/relaymesh/relaymesh/bench/procstat"

	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

type options struct {
	url      string
	n        int
	duration time.Duration
	warmup   time.Duration
	idle     time.Duration
	waitLive time.Duration
	probe    bool
	distinct bool
	streams  bool
	parallel int
	pid      int
	label    string
	mark     string
}

// Result is what the reader prints.
type Result struct {
	Label      string         `json:"label,omitempty"`
	URL        string         `json:"url"`
	Readers    int            `json:"readers"`
	OK         int            `json:"ok"`       // connected and received media
	Failed     int            `json:"failed"`   // could not connect
	NoMedia    int            `json:"no_media"` // connected, no byte before the window
	Dropped    int            `json:"dropped"`  // connected, then ended before the window closed
	Errors     map[string]int `json:"errors,omitempty"`
	ConnectSec float64        `json:"connect_seconds"`
	WindowSec  float64        `json:"window_seconds"`
	Bytes      uint64         `json:"bytes"` // TS payload received by all readers in the window
	Mbps       float64        `json:"mbit_per_s"`
	PerReader  float64        `json:"mbit_per_s_per_reader"` // mean over the OK readers
	ReaderMin  float64        `json:"reader_mbit_min"`
	ReaderMed  float64        `json:"reader_mbit_median"`
	ReaderMax  float64        `json:"reader_mbit_max"`
	PerSecond  []float64      `json:"per_second_mbit"`
	SRT        SRTStats       `json:"srt"`
	TS         TSStats        `json:"ts"`
	SelfCPUPct float64        `json:"reader_cpu_percent"` // this process, in the window
	Server     *ServerStats   `json:"server,omitempty"`
}

// SRTStats are libsrt's receiver counters summed over the readers, window
// deltas.
type SRTStats struct {
	PktRecv       uint64  `json:"pkt_recv"`        // DATA packets, with retransmitted ones
	PktRecvUnique uint64  `json:"pkt_recv_unique"` // delivered to the reader
	PktLoss       uint64  `json:"pkt_loss"`        // detected missing (then maybe retransmitted)
	PktRetrans    uint64  `json:"pkt_retrans"`     // retransmitted packets received
	PktDrop       uint64  `json:"pkt_drop"`        // too late or never came: not delivered
	PktBelated    uint64  `json:"pkt_belated"`     // came after their play time
	NAKSent       uint64  `json:"nak_sent"`
	DropPct       float64 `json:"drop_percent"` // pkt_drop / (pkt_recv_unique + pkt_drop)
	LossPct       float64 `json:"loss_percent"` // pkt_loss / (pkt_recv_unique + pkt_drop)
	RTTMsMax      float64 `json:"rtt_ms_max"`   // largest smoothed RTT seen by a reader at the end
}

// TSStats is what the continuity check saw in the window, summed.
type TSStats struct {
	Packets  uint64 `json:"packets"`
	CCGaps   uint64 `json:"cc_gaps"` // continuity-counter gaps: media the reader never got
	SyncLost uint64 `json:"sync_lost_bytes"`
}

// ServerStats is the server's cost, measured from /proc.
type ServerStats struct {
	PID            int     `json:"pid"`
	Processes      int     `json:"processes"`
	IdleCPUPct     float64 `json:"idle_cpu_percent"` // with the publisher and no reader
	benchutil.Cost         // in the window
	RSS0KiB        uint64  `json:"rss0_kib"` // max over the idle phase (no reader)
	RSSNKiB        uint64  `json:"rssN_kib"` // max over the window (N readers)
	RSSPerReader   float64 `json:"rss_kib_per_reader"`
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "srt://127.0.0.1:8890?streamid=read:live/bench", "SRT listener to read from, srt://HOST:PORT?streamid=...&latency=MS (srt-live-transmit URL options: streamid, latency, passphrase, pbkeylen)")
	flag.IntVar(&o.n, "n", 10, "number of SRT connections")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "measurement window")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "time between the last reader getting media and the window")
	flag.DurationVar(&o.idle, "idle", 3*time.Second, "with -pid: measure the server's CPU and RSS this long before connecting")
	flag.DurationVar(&o.waitLive, "wait-live", 20*time.Second, "wait up to this long for media (the probe's, or every reader's first bytes)")
	flag.BoolVar(&o.probe, "probe", false, "before the idle phase, wait until one probe connection gets media, then close it (not for a listener that serves a single caller)")
	flag.BoolVar(&o.distinct, "distinct-ports", false, "reader i dials PORT+i (one single-client relay per reader, e.g. srt-live-transmit)")
	flag.BoolVar(&o.streams, "distinct-streams", false, "reader i reads its own stream: i is appended to the URL's streamid (read:live/b -> read:live/b0, b1, ...; -probe probes stream 0)")
	flag.IntVar(&o.parallel, "parallel", 16, "connections opened at once")
	flag.IntVar(&o.pid, "pid", 0, "server process to measure (0: none)")
	flag.StringVar(&o.label, "label", "", "label copied into the JSON")
	flag.StringVar(&o.mark, "mark", "", "create this file when the measurement window starts")
	flag.Parse()
	if o.n < 1 || o.parallel < 1 || o.duration <= 0 {
		fmt.Fprintln(os.Stderr, "srtreader: -n and -parallel must be >= 1, -duration > 0")
		os.Exit(2)
	}
	addr, cfg, err := libsrt.ParseURL(o.url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "srtreader: -url %q: %v\n", o.url, err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	res, err := run(ctx, o, addr, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "srtreader:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
	if res.OK == 0 {
		os.Exit(1)
	}
}

// reader is one SRT connection and what it received.
type reader struct {
	conn  *libsrt.Conn
	bytes atomic.Uint64
	done  atomic.Bool
	err   atomic.Pointer[error]
	got   chan struct{} // closed at the first byte

	mu sync.Mutex
	cc ccChecker
}

// snap is a reader's counters at one instant.
type snap struct {
	bytes uint64
	ts    TSStats
	srt   libsrt.Stats
}

func (r *reader) loop() {
	buf := make([]byte, 1500)
	first := true
	for {
		n, err := r.conn.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.cc.Feed(buf[:n])
			r.bytes.Add(uint64(n))
			r.mu.Unlock()
			if first {
				close(r.got)
				first = false
			}
		}
		if err != nil {
			r.err.Store(&err)
			r.done.Store(true)
			return
		}
	}
}

func (r *reader) snapshot() snap {
	var s snap
	r.mu.Lock()
	s.ts = TSStats{Packets: r.cc.Packets, CCGaps: r.cc.Gaps, SyncLost: r.cc.SyncLost}
	s.bytes = r.bytes.Load()
	r.mu.Unlock()
	s.srt = r.conn.Stats()
	return s
}

func dial(addr string, cfg libsrt.Options) (*reader, error) {
	c, err := libsrt.Dial(context.Background(), addr, cfg)
	if err != nil {
		return nil, err
	}
	r := &reader{conn: c, got: make(chan struct{})}
	go r.loop()
	return r, nil
}

func run(ctx context.Context, o options, addr string, cfg libsrt.Options) (*Result, error) {
	res := &Result{Label: o.label, URL: o.url, Readers: o.n, Errors: map[string]int{}}
	if o.probe {
		if err := waitLive(ctx, addr, streamOf(o, cfg, 0), o.waitLive); err != nil {
			return nil, err
		}
	}
	var srv *ServerStats
	if o.pid > 0 {
		idle, err := benchutil.MeasureIdle(ctx, o.pid, o.idle)
		if err != nil {
			return nil, err
		}
		srv = &ServerStats{PID: o.pid, Processes: idle.Start.PIDs,
			RSS0KiB: max(idle.Start.RSSKiB, idle.RSSMaxKiB), IdleCPUPct: round(idle.CPUPct, 1)}
	}

	// Connect, o.parallel at a time.
	t0 := time.Now()
	readers := make([]*reader, o.n)
	errs := make([]error, o.n)
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for i := range readers {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := addr
			if o.distinct {
				a, errs[i] = addPort(addr, i)
				if errs[i] != nil {
					return
				}
			}
			readers[i], errs[i] = dial(a, streamOf(o, cfg, i))
		}()
	}
	wg.Wait()
	defer func() {
		for _, r := range readers {
			if r != nil {
				r.conn.CloseNow()
			}
		}
	}()
	var live []*reader
	for i, r := range readers {
		if r == nil {
			res.Failed++
			if errs[i] != nil {
				res.Errors["dial: "+errs[i].Error()]++
			}
			continue
		}
		live = append(live, r)
	}
	// Wait for every connected reader's first bytes.
	deadline := time.NewTimer(o.waitLive)
	defer deadline.Stop()
wait:
	for _, r := range live {
		select {
		case <-r.got:
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	res.ConnectSec = round(time.Since(t0).Seconds(), 3)
	var ok []*reader
	for _, r := range live {
		select {
		case <-r.got:
			ok = append(ok, r)
		default:
			res.NoMedia++
		}
	}
	res.OK = len(ok)
	if res.OK == 0 {
		return res, nil
	}
	if !sleep(ctx, o.warmup) {
		return nil, ctx.Err()
	}

	// The window.
	before := make([]snap, len(ok))
	for i, r := range ok {
		before[i] = r.snapshot()
	}
	self0, _ := procstat.SampleTree(os.Getpid())
	var p0 procstat.Sample
	if srv != nil {
		var err error
		if p0, err = procstat.SampleTree(o.pid); err != nil {
			return nil, err
		}
	}
	if o.mark != "" {
		_ = os.WriteFile(o.mark, nil, 0o644)
	}
	w0 := time.Now()
	total := func() (b uint64) {
		for _, r := range ok {
			b += r.bytes.Load()
		}
		return b
	}
	last := total()
	for i := 1; time.Since(w0) < o.duration; i++ {
		next := w0.Add(time.Duration(i) * time.Second)
		if end := w0.Add(o.duration); next.After(end) {
			next = end
		}
		if !sleep(ctx, time.Until(next)) {
			return nil, ctx.Err()
		}
		b := total()
		res.PerSecond = append(res.PerSecond, round(float64(b-last)*8/1e6, 2))
		last = b
		if srv != nil {
			if s, err := procstat.SampleTree(o.pid); err == nil {
				srv.RSSNKiB = max(srv.RSSNKiB, s.RSSKiB)
			}
		}
	}
	window := time.Since(w0).Seconds()
	var p1 procstat.Sample
	if srv != nil {
		var err error
		if p1, err = procstat.SampleTree(o.pid); err != nil {
			return nil, fmt.Errorf("server ended during the window: %w", err)
		}
	}
	self1, _ := procstat.SampleTree(os.Getpid())
	after := make([]snap, len(ok))
	for i, r := range ok {
		after[i] = r.snapshot()
	}

	perReader := make([]float64, len(ok))
	for i, r := range ok {
		a, b := after[i], before[i]
		res.Bytes += a.bytes - b.bytes
		perReader[i] = float64(a.bytes-b.bytes) * 8 / 1e6 / window
		res.TS.Packets += a.ts.Packets - b.ts.Packets
		res.TS.CCGaps += a.ts.CCGaps - b.ts.CCGaps
		res.TS.SyncLost += a.ts.SyncLost - b.ts.SyncLost
		aa, ba := a.srt, b.srt
		res.SRT.PktRecv += aa.PacketsReceived - ba.PacketsReceived
		res.SRT.PktRecvUnique += aa.PacketsUnique - ba.PacketsUnique
		res.SRT.PktLoss += aa.PacketsRecvLost - ba.PacketsRecvLost
		res.SRT.PktRetrans += aa.RecvRetransmits - ba.RecvRetransmits
		res.SRT.PktDrop += aa.RecvDrops - ba.RecvDrops
		res.SRT.PktBelated += aa.RecvBelated - ba.RecvBelated
		res.SRT.NAKSent += aa.NAKsSent - ba.NAKsSent
		res.SRT.RTTMsMax = max(res.SRT.RTTMsMax, round(a.srt.RTTMs, 3))
		if r.done.Load() {
			res.Dropped++
			if e := r.err.Load(); e != nil {
				res.Errors[(*e).Error()]++
			}
		}
	}
	if d := res.SRT.PktRecvUnique + res.SRT.PktDrop; d > 0 {
		res.SRT.DropPct = round(100*float64(res.SRT.PktDrop)/float64(d), 4)
		res.SRT.LossPct = round(100*float64(res.SRT.PktLoss)/float64(d), 4)
	}
	sort.Float64s(perReader)
	res.ReaderMin = round(perReader[0], 3)
	res.ReaderMax = round(perReader[len(perReader)-1], 3)
	res.ReaderMed = round(perReader[len(perReader)/2], 3)
	res.WindowSec = round(window, 3)
	res.Mbps = round(float64(res.Bytes)*8/1e6/window, 2)
	res.PerReader = round(res.Mbps/float64(res.OK), 3)
	res.SelfCPUPct = benchutil.WindowCost(self0, self1, window, 0).CPUPct
	if srv != nil {
		srv.Cost = benchutil.WindowCost(p0, p1, window, res.Bytes)
		srv.RSSPerReader = benchutil.PerReader(srv.RSSNKiB, srv.RSS0KiB, o.n)
		res.Server = srv
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return res, nil
}

// waitLive polls with one probe connection until it gets media, then
// closes it.
func waitLive(ctx context.Context, addr string, cfg libsrt.Options, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		r, err := dial(addr, cfg)
		if err == nil {
			t := time.NewTimer(min(3*time.Second, time.Until(deadline)))
			select {
			case <-r.got:
				t.Stop()
				r.conn.CloseNow()
				return nil
			case <-t.C:
				err = errors.New("connected, no media")
			case <-ctx.Done():
			}
			r.conn.CloseNow()
		}
		last = err
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s did not send media within %s: %v", addr, wait, last)
}

// streamOf is reader i's options: with -distinct-streams its streamid
// ends in i.
func streamOf(o options, cfg libsrt.Options, i int) libsrt.Options {
	if o.streams {
		cfg.StreamID += strconv.Itoa(i)
	}
	return cfg
}

// addPort returns host:port with port+k.
func addPort(addr string, k int) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p+k > 65535 || p+k < 1 {
		return "", fmt.Errorf("bad port in %q (+%d)", addr, k)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+k)), nil
}

var (
	sleep = benchutil.Sleep
	round = benchutil.Round
)
