package main

import (
	"github.com/relaymesh/relaymesh/bench/procstat"
	"github.com/relaymesh/relaymesh/bench/rtmpdial"

	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

func TestParseStat(t *testing.T) {
	cases := []struct {
		name      string
		line      string
		ppid      int
		ticks     uint64
		sys       uint64
		wantError bool
	}{
		{"plain", "4358 (relaymesh) S 1 4358 1 0 -1 4194560 1419 0 0 0 120 35 0 0 20 0 9 0 2100 1 2 3", 1, 155, 35, false},
		{"name with spaces and parens", "77 (nginx: (worker) x) R 76 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0", 76, 10, 3, false},
		{"truncated", "77 (x) R 76 1", 0, 0, 0, true},
		{"no name", "garbage", 0, 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ppid, ticks, sys, err := procstat.ParseStat([]byte(c.line))
			if c.wantError {
				if err == nil {
					t.Fatalf("want an error, got ppid %d ticks %d", ppid, ticks)
				}
				return
			}
			if err != nil || ppid != c.ppid || ticks != c.ticks || sys != c.sys {
				t.Fatalf("got ppid %d ticks %d sys %d err %v; want %d %d %d", ppid, ticks, sys, err, c.ppid, c.ticks, c.sys)
			}
		})
	}
}

func TestSampleTreeSelf(t *testing.T) {
	s, err := procstat.SampleTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PIDs < 1 || s.RSSKiB == 0 || s.HWMKiB < s.RSSKiB || s.AnonKiB == 0 || s.AnonKiB > s.RSSKiB {
		t.Fatalf("sample of this process: %+v", s)
	}
	if _, err := procstat.SampleTree(1 << 30); err == nil {
		t.Fatal("procstat.SampleTree of a pid that does not exist: no error")
	}
}

func TestParseMemStats(t *testing.T) {
	text := "heap profile: 1: 2 [3: 4] @ heap/1048576\n# runtime.MemStats\n# Alloc = 10\n# HeapAlloc = 2048\n# HeapSys = 8192\n# HeapInuse = 4096\n# Stack = 65536 / 98304\n# Sys = 99999\n"
	m, err := parseMemStats(text)
	if err != nil {
		t.Fatal(err)
	}
	want := goMem{HeapAlloc: 2048, HeapInuse: 4096, HeapSys: 8192, StackInuse: 65536, Sys: 99999}
	if *m != want {
		t.Fatalf("got %+v, want %+v", *m, want)
	}
	if _, err := parseMemStats("not a heap profile"); err == nil {
		t.Fatal("no error for text without MemStats")
	}
	n, err := parseGoroutines("goroutine profile: total 812\n1 @ 0x1\n")
	if err != nil || n != 812 {
		t.Fatalf("parseGoroutines = %d, %v", n, err)
	}
}

// TestReadersAgainstRelaymesh plays a stream from the relaymesh RTMP
// server with several readers and checks that they get to play, receive
// the bytes the publisher wrote, and acknowledge them.
func TestReadersAgainstRelaymesh(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	srv, err := rtmp.New(rtmp.Config{Listen: "127.0.0.1:0"}, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	defer func() { hub.Close(); cancel(); wg.Wait() }()

	pub, err := hub.Publish("live/t", media.PublisherInfo{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// 2.5 MB of video in 100 packets: more than relaymesh's 2.5 MB ack
	// window, so every reader must acknowledge at least once.
	payload := make([]byte, 25000)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := pub.Write(&unit.Packet{Kind: unit.KindVideo, Time: int64(i * 33), Keyframe: i == 0, Payload: payload}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	write(0, 1)

	tg, err := rtmpdial.ParseURL(fmt.Sprintf("rtmp://%s/live/t", srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	const readers = 5
	var players []*player
	for range readers {
		p, err := dial(ctx, tg, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		players = append(players, p)
	}
	rctx, stop := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	for _, p := range players {
		rwg.Add(1)
		go func() { defer rwg.Done(); p.run(rctx, make([]byte, 32<<10)) }()
	}
	write(1, 100)
	wantEach := uint64(99 * len(payload)) // at least the packets written after play
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := 0
		for _, p := range players {
			if p.bytes.Load() >= wantEach {
				done++
			}
		}
		if done == readers {
			break
		}
		if time.Now().After(deadline) {
			for i, p := range players {
				t.Errorf("reader %d: %d bytes, want >= %d (ended %v)", i, p.bytes.Load(), wantEach, p.done.Load())
			}
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	rwg.Wait()
	for i, p := range players {
		if p.ackWindow == 0 || p.acks.Load() == 0 {
			t.Errorf("reader %d: ack window %d, %d acks sent: want at least one after %d bytes", i, p.ackWindow, p.acks.Load(), p.bytes.Load())
		}
		if e := p.err.Load(); e != nil {
			t.Errorf("reader %d: %v", i, *e)
		}
		p.nc.Close()
	}

	// A stream that is not live: play is refused with the server's reason.
	tg.Name = "missing"
	if _, err := dial(ctx, tg, 5*time.Second); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("play of a missing stream: err = %v, want StreamNotFound", err)
	}
}

// FuzzParseStat: /proc/PID/stat text never panics the parser.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4358 (relaymesh) S 1 4358 1 0 -1 4194560 1419 0 0 0 120 35 0 0 20 0"))
	f.Add([]byte("1 ()) ) R 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		procstat.ParseStat(b)
		procstat.ParseStatus(b)
	})
}

// FuzzParseMemStats: a server's pprof text never panics the parsers.
func FuzzParseMemStats(f *testing.F) {
	f.Add("# HeapAlloc = 1\n# Stack = 2 / 3\n# Sys = 4\n")
	f.Add("goroutine profile: total 7\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseMemStats(s)
		parseGoroutines(s)
	})
}

// TestFrameStats: a reader at >= 95 % of fps x window is at the full
// rate; one below is listed, worst first; one that never connected
// counts as zero and is not at the full rate.
func TestFrameStats(t *testing.T) {
	o := options{streams: 4, n: 4, fps: 30}
	targets := []rtmpdial.Target{{Name: "s0"}, {Name: "s1"}, {Name: "s2"}, {Name: "s3"}}
	live := []*player{{stream: 0}, {stream: 1}, {stream: 3}} // s2 failed to connect
	f0 := []uint64{10, 0, 5}
	f1 := []uint64{10 + 300, 285, 5 + 150} // 100 %, 95 %, 50 % of 30 fps x 10 s
	fs := frameStats(o, targets, live, f0, f1, 10)
	if fs.FullRate != 2 || fs.Total != 735 || fs.Expected != 300 {
		t.Fatalf("full rate %d, total %d, expected %v; want 2, 735, 300", fs.FullRate, fs.Total, fs.Expected)
	}
	if len(fs.Short) != 1 || fs.Short[0] != (ShortReader{"s3", 0.5}) || fs.MinRatio != 0 || fs.MedianRatio != 0.95 {
		t.Fatalf("short %+v, min %v, median %v; want [s3 0.5], 0, 0.95", fs.Short, fs.MinRatio, fs.MedianRatio)
	}
}
