package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// tsPacket builds one 188-byte TS packet of pid with counter cc;
// afc is the adaptation_field_control (1 payload, 2 adaptation only,
// 3 both); disc sets the discontinuity indicator (needs afc&2).
func tsPacket(pid int, cc byte, afc byte, disc bool) []byte {
	p := make([]byte, tsPacketSize)
	p[0] = 0x47
	p[1] = byte(pid >> 8 & 0x1f)
	p[2] = byte(pid)
	p[3] = afc<<4 | cc&0x0f
	if afc&2 != 0 {
		p[4] = 1
		if disc {
			p[5] = 0x80
		}
	}
	return p
}

func join(ps ...[]byte) []byte {
	var b []byte
	for _, p := range ps {
		b = append(b, p...)
	}
	return b
}

func TestCCChecker(t *testing.T) {
	cases := []struct {
		name          string
		in            []byte
		split         int // feed in pieces of this size (0: at once)
		packets, gaps uint64
		syncLost      uint64
	}{
		{"continuous", join(tsPacket(256, 14, 1, false), tsPacket(256, 15, 1, false), tsPacket(256, 0, 1, false)), 0, 3, 0, 0},
		{"one gap", join(tsPacket(256, 1, 1, false), tsPacket(256, 3, 1, false)), 0, 2, 1, 0},
		{"duplicate is allowed", join(tsPacket(256, 1, 1, false), tsPacket(256, 1, 1, false), tsPacket(256, 2, 1, false)), 0, 3, 0, 0},
		{"pids counted apart", join(tsPacket(256, 1, 1, false), tsPacket(257, 9, 1, false), tsPacket(256, 2, 1, false), tsPacket(257, 10, 1, false)), 0, 4, 0, 0},
		{"adaptation only does not advance", join(tsPacket(256, 1, 1, false), tsPacket(256, 1, 2, false), tsPacket(256, 2, 3, false)), 0, 3, 0, 0},
		{"discontinuity indicator resets", join(tsPacket(256, 1, 1, false), tsPacket(256, 9, 3, true), tsPacket(256, 10, 1, false)), 0, 3, 0, 0},
		{"null packets ignored", join(tsPacket(0x1fff, 1, 1, false), tsPacket(0x1fff, 7, 1, false)), 0, 2, 0, 0},
		{"split across feeds", join(tsPacket(256, 1, 1, false), tsPacket(256, 2, 1, false), tsPacket(256, 4, 1, false)), 100, 3, 1, 0},
		{"garbage before sync", join([]byte{1, 2, 3}, tsPacket(256, 1, 1, false), tsPacket(256, 2, 1, false)), 0, 2, 0, 3},
		{"partial packet is held", tsPacket(256, 1, 1, false)[:100], 0, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cc ccChecker
			if c.split == 0 {
				cc.Feed(c.in)
			} else {
				for b := c.in; len(b) > 0; {
					k := min(c.split, len(b))
					cc.Feed(b[:k])
					b = b[k:]
				}
			}
			if cc.Packets != c.packets || cc.Gaps != c.gaps || cc.SyncLost != c.syncLost {
				t.Fatalf("packets %d gaps %d sync lost %d; want %d %d %d", cc.Packets, cc.Gaps, cc.SyncLost, c.packets, c.gaps, c.syncLost)
			}
		})
	}
}

func FuzzCCChecker(f *testing.F) {
	f.Add(join(tsPacket(256, 1, 1, false), tsPacket(256, 3, 3, true)), 7)
	f.Add([]byte{0x47, 0x47, 0x00}, 1)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		if split <= 0 {
			split = len(b) + 1
		}
		var whole, pieces ccChecker
		whole.Feed(b)
		for r := b; len(r) > 0; {
			k := min(split, len(r))
			pieces.Feed(r[:k])
			r = r[k:]
		}
		if whole.Packets > uint64(len(b)/tsPacketSize) || whole.Gaps > whole.Packets {
			t.Fatalf("%d packets, %d gaps from %d bytes", whole.Packets, whole.Gaps, len(b))
		}
		// Where the input is split must not change a clean stream's
		// packet count (garbage may resync differently only inside a
		// held partial packet).
		if whole.SyncLost == 0 && pieces.SyncLost == 0 && whole.Packets != pieces.Packets {
			t.Fatalf("at once %d packets, in pieces of %d: %d", whole.Packets, split, pieces.Packets)
		}
	})
}

func TestAddPort(t *testing.T) {
	cases := []struct {
		name, addr string
		k          int
		want       string
		bad        bool
	}{
		{"zero", "127.0.0.1:9000", 0, "127.0.0.1:9000", false},
		{"plus three", "127.0.0.1:9000", 3, "127.0.0.1:9003", false},
		{"ipv6", "[::1]:9000", 1, "[::1]:9001", false},
		{"overflow", "127.0.0.1:65535", 1, "", true},
		{"no port", "127.0.0.1", 1, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := addPort(c.addr, c.k)
			if c.bad {
				if err == nil {
					t.Fatalf("addPort(%q, %d) = %q, want an error", c.addr, c.k, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("addPort(%q, %d) = %q, %v; want %q", c.addr, c.k, got, err, c.want)
			}
		})
	}
}

func TestStreamOf(t *testing.T) {
	cases := []struct {
		name    string
		streams bool
		i       int
		want    string
	}{
		{"one stream", false, 7, "read:live/b"},
		{"first of many", true, 0, "read:live/b0"},
		{"twentieth", true, 19, "read:live/b19"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := streamOf(options{streams: c.streams}, libsrt.Options{StreamID: "read:live/b"}, c.i)
			if got.StreamID != c.want {
				t.Fatalf("streamid %q, want %q", got.StreamID, c.want)
			}
		})
	}
}

// tsServer is an SRT listener that sends every caller 7-packet TS
// messages, about 2.5 Mbit/s, skipping one counter value every
// skipEvery messages (0: never).
func tsServer(t *testing.T, skipEvery int) string {
	t.Helper()
	ln, err := libsrt.Listen("127.0.0.1:0", libsrt.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.CloseNow()
				var cc byte
				tick := time.NewTicker(4 * time.Millisecond)
				defer tick.Stop()
				for i := 1; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					msg := make([]byte, 0, 7*tsPacketSize)
					for range 7 {
						msg = append(msg, tsPacket(256, cc, 1, false)...)
						cc++
					}
					if skipEvery > 0 && i%skipEvery == 0 {
						cc++
					}
					if _, err := conn.Write(msg); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
				}
			}()
		}
	}()
	return fmt.Sprintf("srt://%s?latency=120", ln.Addr().(*net.UDPAddr).String())
}

// TestRunAgainstListener reads from a real SRT listener: every reader
// gets media, the totals add up, and a stream with counter gaps is
// reported as such while a clean one is not.
func TestRunAgainstListener(t *testing.T) {
	cases := []struct {
		name      string
		skipEvery int
		wantGaps  bool
	}{
		{"clean stream", 0, false},
		{"stream with gaps", 50, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := tsServer(t, c.skipEvery)
			addr, cfg, err := libsrt.ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			o := options{url: url, n: 3, duration: 1500 * time.Millisecond, warmup: 200 * time.Millisecond,
				waitLive: 10 * time.Second, probe: true, parallel: 2, pid: os.Getpid()}
			res, err := run(context.Background(), o, addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 3 || res.Failed != 0 || res.NoMedia != 0 {
				t.Fatalf("ok %d failed %d no media %d, want 3/0/0 (errors %v)", res.OK, res.Failed, res.NoMedia, res.Errors)
			}
			if res.Bytes == 0 || res.ReaderMin <= 0 || res.TS.Packets == 0 {
				t.Fatalf("nothing counted: %+v", res)
			}
			if res.Bytes != res.TS.Packets*tsPacketSize {
				t.Fatalf("%d bytes but %d TS packets checked", res.Bytes, res.TS.Packets)
			}
			if got := res.TS.CCGaps > 0; got != c.wantGaps {
				t.Fatalf("cc gaps %d, want gaps: %v", res.TS.CCGaps, c.wantGaps)
			}
			if res.SRT.PktRecvUnique == 0 {
				t.Fatalf("no SRT statistics: %+v", res.SRT)
			}
			if res.Server == nil || res.Server.CPUSeconds < 0 || res.Server.RSSNKiB == 0 {
				t.Fatalf("server stats missing: %+v", res.Server)
			}
		})
	}
}
