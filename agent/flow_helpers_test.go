package agent_test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/mpegts"
)

// startFlow creates spec through a's API and starts it; it returns the
// flows of a's typed client.
func startFlow(t *testing.T, ctx context.Context, a *agentProc, spec flow.Spec) client.Objects[flow.Spec, flow.View] {
	t.Helper()
	flows := a.Client().Flows()
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create flow %s: %v", spec.ID, err)
	}
	if _, err := flows.Do(ctx, spec.ID, "start"); err != nil {
		t.Fatalf("start flow %s: %v", spec.ID, err)
	}
	return flows
}

// encodeAhead encodes src to dir/name.<src.Format> with ffmpeg, vf
// (filter arguments) before the video encoder, and returns the path. A
// source encoded ahead and published with -re -c copy never stalls: a
// live x264 encoder on a loaded machine can stall for longer than a
// flow's 300 ms silence failover, which the health tests do not test.
func encodeAhead(t *testing.T, ctx context.Context, dir, name string, src testmedia.Source, vf ...string) string {
	t.Helper()
	src = src.Defaults()
	path := filepath.Join(dir, name+"."+src.Format)
	args := src.Args(path)
	for i, arg := range args {
		if arg == "-c:v" && len(vf) > 0 {
			args = append(args[:i:i], append(vf, args[i:]...)...)
			break
		}
	}
	if out, err := exec.CommandContext(ctx, "ffmpeg", append([]string{"-y"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("encode %s: %v: %s", name, err, out)
	}
	return path
}

// publishAhead publishes the file at path in real time (-re -c copy,
// then the output options opts) as format to url until ctx ends or the
// test does.
func publishAhead(t *testing.T, ctx context.Context, path, format, url string, opts ...string) {
	t.Helper()
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", path, "-c", "copy"}, opts...)
	p := exec.CommandContext(ctx, "ffmpeg", append(args, "-f", format, url)...)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Process.Kill(); p.Wait() })
}

// publishTSDamaged publishes the (FLV) file at path in real time as
// MPEG-TS to the SRT url: ffmpeg (-re -c copy, each packet flushed) muxes
// it to a pipe (from an MPEG-TS file, ffmpeg -re writes in bursts 250 ms
// apart, which a flow takes for silence), this test reads it
// in 188-byte TS packets and, from clean after the first packet on,
// drops every nth packet, and srt-live-transmit sends the rest (SRT
// carries whatever it is given: the damage is in the TS, as from a
// source behind a lossy UDP hop). It returns the count of packets dropped.
func publishTSDamaged(t *testing.T, ctx context.Context, path, url string, clean time.Duration, nth int) *atomic.Int64 {
	t.Helper()
	ff := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", path, "-c", "copy", "-flush_packets", "1", "-f", "mpegts", "pipe:1")
	slt := exec.CommandContext(ctx, "srt-live-transmit", "-q", "file://con", url)
	out, err := ff.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := slt.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := slt.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer in.Close()
		pkt := make([]byte, mpegts.PacketSize)
		msg := make([]byte, 0, 7*mpegts.PacketSize) // srt-live-transmit's 1316-byte chunks
		var start time.Time
		for n := 0; ; n++ {
			if _, err := io.ReadFull(out, pkt); err != nil {
				return
			}
			if start.IsZero() {
				start = time.Now()
			}
			if time.Since(start) >= clean && n%nth == 0 {
				dropped.Add(1)
				continue
			}
			if msg = append(msg, pkt...); len(msg) == cap(msg) {
				if _, err := in.Write(msg); err != nil {
					return
				}
				msg = msg[:0]
			}
		}
	}()
	t.Cleanup(func() {
		ff.Process.Kill()
		slt.Process.Kill()
		<-done // the reads end before Wait closes the pipe
		ff.Wait()
		slt.Wait()
	})
	return &dropped
}

// flowHolds polls a flow's status (get) for hold and fails the test at the
// first poll that wrong finds wrong (it says what; "" = as it should be):
// a state that must last is watched for all of its window, not seen once.
func flowHolds(t *testing.T, hold time.Duration, what string, get func() *flow.Status, wrong func(*flow.Status) string) {
	t.Helper()
	start := time.Now()
	poll.Until(t, hold+10*time.Second, fmt.Sprintf("%s for %s", what, hold), func() bool {
		if w := wrong(get()); w != "" {
			t.Fatalf("%s: not so %s in: %s", what, time.Since(start).Round(time.Millisecond), w)
		}
		return time.Since(start) >= hold
	})
}

// flowStatus returns a getter of flow id's status through flows (an
// empty one while the flow has none).
func flowStatus(t *testing.T, ctx context.Context, flows client.Objects[flow.Spec, flow.View], id string) func() *flow.Status {
	return func() *flow.Status {
		v, err := flows.Get(ctx, id)
		if err != nil {
			t.Fatalf("GET flow %s: %v", id, err)
		}
		if v.Status == nil {
			return &flow.Status{}
		}
		return v.Status
	}
}
