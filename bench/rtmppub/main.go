// Command rtmppub publishes many RTMP streams from one process: each of
// -streams connections publishes rtmp://HOST:PORT/APP/NAME with %d in the
// URL replaced by the stream's number, replaying an FLV clip (read into
// memory once) in real time and in a loop, on its own timeline: its
// timestamps start at 0 and keep growing across loops, and the clip's
// codec headers are sent once. Stream starts are spread over -spread so
// the keyframes of different streams do not line up. Writes due within
// -batch of each other go out in one write call (an encoder writes once
// per frame; one goroutine per stream sleeps between them).
//
// It runs until -duration or SIGTERM and then prints one JSON object:
// streams connected, failed, dropped, frames sent, and its own CPU.
//
//	rtmppub -url rtmp://127.0.0.1:1935/live/s%d -streams 1000 -clip clip.flv
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relaymesh/relaymesh/bench/benchutil"
	"github.com/relaymesh/relaymesh/bench/procstat"
	"github.com/relaymesh/relaymesh/bench/rtmpdial"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Result is what rtmppub prints.
type Result struct {
	URL        string         `json:"url"`
	Streams    int            `json:"streams"`
	Connected  int            `json:"connected"`
	Failed     int            `json:"failed"`  // could not connect or publish
	Dropped    int            `json:"dropped"` // published, then a write failed
	Errors     map[string]int `json:"errors,omitempty"`
	ConnectSec float64        `json:"connect_seconds"`
	Seconds    float64        `json:"seconds"`
	Frames     uint64         `json:"video_frames_sent"`
	Bytes      uint64         `json:"bytes_sent"` // payload
	CPUSeconds float64        `json:"cpu_seconds"`
	RSSKiB     uint64         `json:"rss_kib"`
}

// batchWriter is the socket as the message layer writes to it: written
// at once until batching starts, then collected until flush.
type batchWriter struct {
	nc       net.Conn
	mu       sync.Mutex // the publisher and the acks of the reading goroutine
	batching bool
	buf      []byte
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.nc.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *batchWriter) startBatching() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// flush writes what was collected.
func (b *batchWriter) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.nc.Write(b.buf)
	if cap(b.buf) > 64<<10 {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
}

type stream struct {
	mc   *rtmp.MessageConn
	nc   net.Conn
	bw   *batchWriter
	err  error
	done atomic.Bool
}

var (
	frames atomic.Uint64
	bytes  atomic.Uint64
)

func main() {
	u := flag.String("url", "rtmp://127.0.0.1:1935/live/s%d", "streams to publish; %d is replaced by 0..streams-1")
	n := flag.Int("streams", 100, "number of streams")
	clipPath := flag.String("clip", "", "FLV clip to replay (H.264/AAC, read once)")
	dur := flag.Duration("duration", 0, "stop after this long (0: at SIGTERM/SIGINT)")
	spread := flag.Duration("spread", 2*time.Second, "start the streams' clocks spread over this long")
	batch := flag.Duration("batch", 20*time.Millisecond, "write packets due within this long of each other at once (0: one write per packet)")
	parallel := flag.Int("parallel", 32, "connections opened at once")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the publisher to this file")
	flag.Parse()
	if *n < 1 || *parallel < 1 || !strings.Contains(*u, "%d") && *n > 1 {
		fmt.Fprintf(os.Stderr, "rtmppub: want -streams >= 1, -parallel >= 1, and a -url with %%d for more than one stream\n")
		os.Exit(2)
	}
	c, err := rtmpdial.LoadClip(*clipPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmppub:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *dur > 0 {
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	stopProfile, err := benchutil.StartCPUProfile(*cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmppub:", err)
		os.Exit(2)
	}
	res := run(ctx, *u, *n, *parallel, c, *spread, *batch)
	stopProfile()
	json.NewEncoder(os.Stdout).Encode(res)
	if res.Connected == 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, u string, n, parallel int, c *rtmpdial.Clip, spread, batch time.Duration) *Result {
	res := &Result{URL: u, Streams: n, Errors: map[string]int{}}
	start := time.Now()
	streams := make([]*stream, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			streams[i], errs[i] = open(rtmpdial.StreamURL(u, i))
		}()
	}
	wg.Wait()
	res.ConnectSec = benchutil.Round(time.Since(start).Seconds(), 3)
	t0 := time.Now()
	var pw sync.WaitGroup
	for i, s := range streams {
		if s == nil {
			res.Failed++
			res.Errors[errs[i].Error()]++
			continue
		}
		res.Connected++
		go rtmpdial.Discard(s.mc) // acks, pings; ends when the socket closes
		pw.Add(1)
		go func() {
			defer pw.Done()
			s.err = s.publish(ctx, c, t0.Add(spread*time.Duration(i)/time.Duration(n)), batch)
			s.done.Store(true)
		}()
	}
	<-ctx.Done()
	pw.Wait()
	for _, s := range streams {
		if s == nil {
			continue
		}
		s.nc.Close()
		if s.err != nil {
			res.Dropped++
			res.Errors[s.err.Error()]++
		}
	}
	res.Seconds = benchutil.Round(time.Since(t0).Seconds(), 3)
	res.Frames, res.Bytes = frames.Load(), bytes.Load()
	if sm, err := procstat.SampleTree(os.Getpid()); err == nil {
		res.CPUSeconds = benchutil.Round(benchutil.TicksToSec(sm.CPUTicks), 3)
		res.RSSKiB = sm.RSSKiB
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return res
}

func open(u string) (*stream, error) {
	s := &stream{}
	mc, nc, name, err := rtmpdial.Dial(u, 10*time.Second, func(nc net.Conn) io.Writer {
		s.bw = &batchWriter{nc: nc}
		return s.bw
	})
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := rtmpdial.Publish(mc, name); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	s.mc, s.nc = mc, nc
	return s, nil
}

// publish replays the clip on the stream's own clock, which starts at
// begin, until ctx ends or a write fails.
func (s *stream) publish(ctx context.Context, c *rtmpdial.Clip, begin time.Time, batch time.Duration) error {
	if !benchutil.Sleep(ctx, time.Until(begin)) {
		return nil
	}
	s.bw.startBatching()
	for _, p := range c.Headers {
		if err := s.mc.Write(rtmpdial.Message(p, 0)); err != nil {
			return err
		}
	}
	return c.Replay(ctx, begin, batch, false, func(p *unit.Packet, ts int64) error {
		if err := s.mc.Write(rtmpdial.Message(p, ts)); err != nil {
			return err
		}
		if p.Kind == unit.KindVideo {
			frames.Add(1)
		}
		bytes.Add(uint64(len(p.Payload)))
		return nil
	}, s.bw.flush)
}
