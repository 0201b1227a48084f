// Package bench_test holds benchmarks of the data plane's hot path, written
// against the public API of package media only.
//
//	go test -run '^$' -bench . -benchmem ./bench/
package bench_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// A 3 Mbit/s stream at 30 fps with 48 kHz AAC: per 100 ms about 3 video
// frames and 5 audio frames. Sizes are what the fan-out benchmark's clip
// carries on average; every 60th video frame is a bigger keyframe.
const (
	videoSize    = 11500
	keyframeSize = 60000
	audioSize    = 340
)

var (
	videoPayload = make([]byte, videoSize)
	keyPayload   = make([]byte, keyframeSize)
	audioPayload = make([]byte, audioSize)
)

// packetAt returns the i-th packet of the synthetic stream: the pattern
// V A V A A V A A repeats, so 3 video and 5 audio frames per 8 packets.
func packetAt(i int) *unit.Packet {
	slot := i % 8
	t := int64(i) * 100 / 8 // ms; 8 packets per 100 ms
	var frame int
	switch slot {
	case 0, 2, 5:
		frame = i / 8 * 3
		if slot == 2 {
			frame++
		} else if slot == 5 {
			frame += 2
		}
		if frame%60 == 0 {
			return &unit.Packet{Kind: unit.KindVideo, Time: t, Keyframe: true, Payload: keyPayload}
		}
		return &unit.Packet{Kind: unit.KindVideo, Time: t, Payload: videoPayload}
	}
	return &unit.Packet{Kind: unit.KindAudio, Time: t, Payload: audioPayload}
}

// avgPayload is the mean payload size of the pattern over one 60-frame GOP.
func avgPayload() int64 {
	var n int64
	const pkts = 8 * 20 // 60 video frames
	for i := range pkts {
		n += int64(len(packetAt(i).Payload))
	}
	return n / pkts
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkHubFanout: one writer publishes packets and N reader goroutines
// take them with Reader.Next and frame them with Packet.AppendRTMP into
// their own iovec list and header scratch, as the RTMP play loop does
// (without the socket write). One op is one packet written and delivered
// to every reader; SetBytes counts the payload bytes delivered to all
// readers, so MB/s is the fan-out throughput. allocs/op includes the
// writer's own Packet: more than a few allocs per op means readers
// allocate.
func BenchmarkHubFanout(b *testing.B) {
	for _, readers := range []int{1, 10, 100, 400} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			benchFanout(b, readers)
		})
	}
}

func benchFanout(b *testing.B, readers int) {
	cfg := media.DefaultHubConfig()
	cfg.MaxReaderLag = 0 // packets carry synthetic times; pace by the ring instead
	cfg.RingSlack = 1 << 30
	cfg.RingBytes = 1 << 30 // keep RingPackets, whatever the GOP, so the pacing below holds
	cfg.ReconnectGrace = time.Millisecond
	hub := media.NewHub(cfg, quietLog())
	defer hub.Close()
	const key = "live/bench"
	pub, err := hub.Publish(key, media.PublisherInfo{Protocol: "bench", Remote: "local"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	progress := make([]atomic.Int64, readers)
	var delivered atomic.Int64 // RTMP bytes, so the work cannot be optimized away
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		r, err := hub.Subscribe(ctx, key, media.SubscribeOptions{Format: media.FormatFLV})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			buf := make([]*unit.Packet, 0, 256)
			bufs := make(net.Buffers, 0, 1024)
			hdr := make([]byte, 0, 256*unit.RTMPHeaderScratch)
			var n int64
			for {
				pkts, err := r.Next(ctx, buf)
				bufs, hdr = bufs[:0], hdr[:0]
				for _, p := range pkts {
					bufs, hdr = p.AppendRTMP(bufs, hdr)
				}
				for _, v := range bufs {
					n += int64(len(v))
				}
				progress[i].Add(int64(len(pkts)))
				if err != nil {
					delivered.Add(n)
					if !errors.Is(err, context.Canceled) && !errors.Is(err, media.ErrStreamEnded) {
						errs <- err
					}
					return
				}
			}
		}()
	}
	minProgress := func() int64 {
		m := progress[0].Load()
		for i := range progress[1:] {
			m = min(m, progress[i+1].Load())
		}
		return m
	}
	// Keep the writer within half the ring of the slowest reader: the hub
	// would make a reader skip otherwise, and this measures delivery.
	window := int64(cfg.RingPackets / 2)

	b.SetBytes(avgPayload() * int64(readers))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%64 == 0 {
			for int64(i)-minProgress() > window {
				runtime.Gosched()
			}
		}
		if err := pub.Write(packetAt(i)); err != nil {
			b.Fatal(err)
		}
	}
	for minProgress() < int64(b.N) {
		select {
		case err := <-errs:
			b.Fatalf("reader: %v", err)
		default:
		}
		runtime.Gosched()
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("reader: %v", err)
	default:
	}
	if delivered.Load() == 0 && b.N > 0 {
		b.Fatal("readers delivered nothing")
	}
	pub.Close()
}

// BenchmarkAppendRTMP: what each RTMP reader pays to frame a packet (the
// chunk headers into its scratch, the payload as shared iovecs), for a
// typical video frame, a keyframe and an audio frame.
func BenchmarkAppendRTMP(b *testing.B) {
	for _, c := range []struct {
		name    string
		kind    unit.Kind
		payload []byte
	}{
		{"video", unit.KindVideo, videoPayload},
		{"keyframe", unit.KindVideo, keyPayload},
		{"audio", unit.KindAudio, audioPayload},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.payload)))
			b.ReportAllocs()
			p := &unit.Packet{Kind: c.kind, Time: 40, Payload: c.payload}
			bufs := make(net.Buffers, 0, 1024)
			hdr := make([]byte, 0, unit.RTMPHeaderScratch)
			n := 0
			for range b.N {
				bufs, hdr = p.AppendRTMP(bufs[:0], hdr[:0])
				n += len(bufs)
			}
			if n < b.N*2 {
				b.Fatalf("fewer than two iovecs per packet")
			}
		})
	}
}
