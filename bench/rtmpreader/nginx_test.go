package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/bench/procstat"
	"github.com/relaymesh/relaymesh/bench/rtmpdial"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// startNginx runs nginx-rtmp from bench/nginx-rtmp.conf.tmpl (the bench
// scripts' configuration) and waits for its worker; it returns the port
// and the master PID.
func startNginx(t *testing.T) (port, pid int) {
	t.Helper()
	tmpl, err := os.ReadFile("../nginx-rtmp.conf.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	n := testmedia.StartNginx(t, string(tmpl))
	testmedia.Eventually(t, 5*time.Second, "nginx to start its worker", func() bool {
		s, err := procstat.SampleTree(n.PID)
		return err == nil && s.PIDs >= 2 // master and worker
	})
	return n.Port, n.PID
}

// TestReadersAgainstNginx: the reader plays from nginx-rtmp (a real peer)
// what ffmpeg publishes there, and measures nginx's master and worker.
func TestReadersAgainstNginx(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	port, pid := startNginx(t)
	ctx := context.Background()
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/t", port)
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 20 * time.Second, Width: 320, Height: 180, Bitrate: "300k"}
	testmedia.Publish(t, ctx, src, url)

	tg, err := rtmpdial.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := waitLive(ctx, tg, 15*time.Second, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	probe.nc.Close()

	before, err := procstat.SampleTree(pid)
	if err != nil {
		t.Fatal(err)
	}
	if before.PIDs != 2 {
		t.Errorf("nginx process tree has %d processes, want master + 1 worker", before.PIDs)
	}
	const readers = 4
	var players []*player
	for range readers {
		p, err := dial(ctx, tg, 5*time.Second)
		if err != nil {
			t.Fatalf("dial nginx: %v", err)
		}
		players = append(players, p)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range players {
		wg.Add(1)
		go func() { defer wg.Done(); p.run(rctx, make([]byte, 32<<10)) }()
	}
	// 300 kbit/s: every reader gets well over 20 KB within a few seconds.
	testmedia.Eventually(t, 10*time.Second, "every reader to receive 20 KB", func() bool {
		for _, p := range players {
			if p.bytes.Load() < 20000 {
				return false
			}
		}
		return true
	})
	stop()
	wg.Wait()
	for i, p := range players {
		if e := p.err.Load(); e != nil {
			t.Errorf("reader %d: %v", i, *e)
		}
		if p.ackWindow == 0 {
			t.Errorf("reader %d: nginx announced no window ack size", i)
		}
		p.nc.Close()
	}
	after, err := procstat.SampleTree(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after.CPUTicks < before.CPUTicks || after.RSSKiB == 0 {
		t.Errorf("nginx samples: before %+v, after %+v", before, after)
	}
}
