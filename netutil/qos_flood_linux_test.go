//go:build linux

package netutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// udpCounter counts what one UDP socket receives.
type udpCounter struct {
	conn    *net.UDPConn
	bytes   atomic.Uint64
	packets atomic.Uint64
	done    chan struct{}
}

func countUDP(c *net.UDPConn) *udpCounter {
	u := &udpCounter{conn: c, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			u.bytes.Add(uint64(n))
			u.packets.Add(1)
		}
	}()
	return u
}

func (u *udpCounter) stop() {
	u.conn.Close()
	<-u.done
}

// sendPaced writes 1316-byte datagrams on c at rate bits/s (payload) for
// d, and returns the bytes and packets written and the time it took.
func sendPaced(c *net.UDPConn, rate uint64, d time.Duration) (bytes, packets uint64, took time.Duration) {
	const size = 1316 // SRT payload size
	buf := make([]byte, size)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if time.Since(start) >= d {
			return bytes, packets, time.Since(start)
		}
		due := uint64(time.Since(start).Seconds() * float64(rate) / 8)
		for n := 0; bytes+size <= due && n < 64; n++ { // at most 64 per tick after a stall
			if _, err := c.Write(buf); err != nil {
				continue // ENOBUFS etc.: the datagram did not leave
			}
			bytes += size
			packets++
		}
	}
	panic("unreachable: the ticker channel is never closed")
}

// setSockBuf raises the send or receive buffer (opt SO_SNDBUFFORCE or
// SO_RCVBUFFORCE): the qdisc, not a socket, must be what limits the flood.
func setSockBuf(t *testing.T, c *net.UDPConn, opt, size int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, size)
	}); err != nil || serr != nil {
		t.Fatalf("setsockopt %d: %v %v", opt, err, serr)
	}
}

type floodResult struct {
	mediaSent, mediaRecv, bulkSent, bulkRecv uint64 // payload bytes
	mediaPkts                                uint64 // packets sent
	mediaTook, bulkTook                      time.Duration
}

func mbps(b uint64, d time.Duration) float64 { return float64(b) * 8 / d.Seconds() / 1e6 }

func (r floodResult) String() string {
	return fmt.Sprintf("media sent %.2f Mbit/s, received %.1f%% of it; bulk sent %.2f Mbit/s, received %.2f Mbit/s (%.1f%%) over %v",
		mbps(r.mediaSent, r.mediaTook), pct(r.mediaRecv, r.mediaSent),
		mbps(r.bulkSent, r.bulkTook), mbps(r.bulkRecv, r.bulkTook), pct(r.bulkRecv, r.bulkSent), r.bulkTook.Round(time.Millisecond))
}

// runFlood sends a DSCP-marked media flow and an unmarked bulk flood from
// nsA to nsB for d, and waits until the receivers see nothing more.
func runFlood(t *testing.T, nsA, nsB netns.NsHandle, dst string, mediaRate, bulkRate uint64, d time.Duration) floodResult {
	t.Helper()
	mediaConn, bulkConn := listenUDPIn(t, nsB, dst+":5004"), listenUDPIn(t, nsB, dst+":6000")
	setSockBuf(t, mediaConn, syscall.SO_RCVBUFFORCE, 8<<20)
	setSockBuf(t, bulkConn, syscall.SO_RCVBUFFORCE, 8<<20)
	mediaRx, bulkRx := countUDP(mediaConn), countUDP(bulkConn)
	defer mediaRx.stop()
	defer bulkRx.stop()

	media := dialUDPIn(t, nsA, dst+":5004")
	if err := SetDSCP(media, DSCPAF41); err != nil {
		t.Fatalf("SetDSCP: %v", err)
	}
	bulk := dialUDPIn(t, nsA, dst+":6000")
	setSockBuf(t, bulk, syscall.SO_SNDBUFFORCE, 8<<20)

	var r floodResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.mediaSent, r.mediaPkts, r.mediaTook = sendPaced(media, mediaRate, d) }()
	go func() { defer wg.Done(); r.bulkSent, _, r.bulkTook = sendPaced(bulk, bulkRate, d) }()
	wg.Wait()

	// Wait for the queues to drain: no new bytes for 300 ms.
	last, lastChange := uint64(0), time.Now()
	poll.Until(t, 5*time.Second, "receivers to go quiet", func() bool {
		now := mediaRx.bytes.Load() + bulkRx.bytes.Load()
		if now != last {
			last, lastChange = now, time.Now()
		}
		return time.Since(lastChange) > 300*time.Millisecond
	})
	r.mediaRecv, r.bulkRecv = mediaRx.bytes.Load(), bulkRx.bytes.Load()
	return r
}

// TestQoSProtectsMediaUnderFlood shapes a veth to 20 Mbit/s, floods it with
// 40 Mbit/s of unmarked UDP and checks that an 8 Mbit/s AF41-marked media
// flow still gets through.
func TestQoSProtectsMediaUnderFlood(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("floods a veth for several seconds")
	}
	const (
		linkRate  = 20_000_000
		mediaRate = 8_000_000
		bulkRate  = 40_000_000
		interval  = 3 * time.Second
	)
	nsA, nsB := newNS(t), newNS(t)
	addVeth(t, nsA, "rmfa", "10.77.0.1/24", nsB, "rmfb", "10.77.0.2/24")

	cfg := DefaultQoSConfig()
	cfg.Enabled = true
	cfg.Interface = "rmfa"
	cfg.Rate = linkRate
	cfg.MediaShare = 0.5            // 10 Mbit/s guaranteed to media
	cfg.MediaPorts = []uint16{9000} // the flood test's media is found by its DSCP alone
	cfg.ControlPorts = []uint16{7946}

	t.Run("with qos", func(t *testing.T) {
		tc := tcConnIn(t, nsA)
		if err := tc.apply(context.Background(), cfg, nil); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		defer tc.remove(cfg.Interface)

		r := runFlood(t, nsA, nsB, "10.77.0.2", mediaRate, bulkRate, interval)
		st, err := tc.classStats(cfg.Interface)
		if err != nil {
			t.Fatalf("ClassStats: %v", err)
		}
		stats := map[string]ClassStat{}
		for _, s := range st {
			stats[s.Class] = s
		}
		t.Logf("QoS on (htb, link %d Mbit/s, media guaranteed %d Mbit/s): %v", linkRate/1_000_000, linkRate/2_000_000, r)
		t.Logf("class stats: media %+v; bulk %+v", stats["media"], stats["bulk"])

		if r.mediaSent == 0 || r.bulkSent == 0 {
			t.Fatalf("nothing sent: media %d bulk %d bytes", r.mediaSent, r.bulkSent)
		}
		if r.mediaRecv < r.mediaSent*85/100 {
			t.Errorf("media received %d of %d bytes (%.1f%%), want >= 85%%", r.mediaRecv, r.mediaSent, pct(r.mediaRecv, r.mediaSent))
		}
		if r.bulkRecv >= r.bulkSent*80/100 {
			t.Errorf("bulk received %d of %d bytes (%.1f%%): the flood was not cut down", r.bulkRecv, r.bulkSent, pct(r.bulkRecv, r.bulkSent))
		}
		if stats["bulk"].Drops == 0 {
			t.Errorf("bulk class dropped nothing under a %d Mbit/s flood", bulkRate/1_000_000)
		}
		// The media datagrams went through the media class: classified by DSCP.
		if stats["media"].Packets < r.mediaPkts*85/100 {
			t.Errorf("media class saw %d packets of %d sent: DSCP classification failed", stats["media"].Packets, r.mediaPkts)
		}
	})

	t.Run("baseline without classes", func(t *testing.T) {
		// The same flood through a plain 20 Mbit/s shaper, for comparison;
		// nothing is asserted about media here.
		tcIn(t, nsA, false, "qdisc", "replace", "dev", "rmfa", "root", "handle", "1:", "tbf",
			"rate", "20mbit", "burst", "32kbit", "latency", "400ms")
		defer tcIn(t, nsA, true, "qdisc", "del", "dev", "rmfa", "root")
		r := runFlood(t, nsA, nsB, "10.77.0.2", mediaRate, bulkRate, interval)
		t.Logf("QoS off (one tbf 20 Mbit/s): %v", r)
		if r.mediaRecv+r.bulkRecv == 0 {
			t.Errorf("nothing received through the baseline shaper")
		}
	})
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
