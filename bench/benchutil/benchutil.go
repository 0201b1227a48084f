// Package benchutil holds what the benchmark readers (bench/rtmpreader,
// bench/srtreader) share: waiting, rounding for the JSON, and the server's
// cost measured from /proc with package procstat.
package benchutil

import (
	"context"
	"math"
	"os"
	"runtime/pprof"
	"time"

	"github.com/relaymesh/relaymesh/bench/procstat"
)

// Sleep waits d or until ctx ends; it reports whether ctx is still alive.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Round rounds v to digits decimal places.
func Round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// TicksToSec converts clock ticks to seconds.
func TicksToSec(t uint64) float64 { return float64(t) / procstat.ClockTicks }

// Idle is the server's cost with the publisher and no reader.
type Idle struct {
	Start     procstat.Sample // sampled when the idle phase began
	RSSMaxKiB uint64          // max RSS over the per-second samples, Start's if none
	RSS       []uint64        // RSS each second
	CPUPct    float64         // CPU percent of one core over the phase, unrounded
}

// MeasureIdle samples the process tree of pid once a second for d.
func MeasureIdle(ctx context.Context, pid int, d time.Duration) (Idle, error) {
	s0, err := procstat.SampleTree(pid)
	if err != nil {
		return Idle{}, err
	}
	idle := Idle{Start: s0}
	t0 := time.Now()
	for time.Since(t0) < d {
		if !Sleep(ctx, min(time.Second, d-time.Since(t0))) {
			return Idle{}, ctx.Err()
		}
		s1, err := procstat.SampleTree(pid)
		if err != nil {
			return Idle{}, err
		}
		idle.RSS = append(idle.RSS, s1.RSSKiB)
		idle.RSSMaxKiB = max(idle.RSSMaxKiB, s1.RSSKiB)
		idle.CPUPct = 100 * TicksToSec(s1.CPUTicks-s0.CPUTicks) / time.Since(t0).Seconds()
	}
	if idle.RSSMaxKiB == 0 {
		idle.RSSMaxKiB = s0.RSSKiB
	}
	return idle, nil
}

// Cost is the server's CPU over a measurement window; the readers embed
// it in their JSON.
type Cost struct {
	CPUSeconds float64 `json:"cpu_seconds"`          // utime+stime, 3 decimals
	SysSeconds float64 `json:"sys_seconds"`          // stime alone (in the kernel), 3 decimals
	CPUPct     float64 `json:"cpu_percent"`          // of one core, 1 decimal
	CPUPerGbit float64 `json:"cpu_seconds_per_gbit"` // CPU seconds per delivered Gbit, 4 decimals; 0 when nothing was delivered
}

// WindowCost is the cost between samples c0 and c1, window seconds apart,
// during which bytes were delivered to the readers.
func WindowCost(c0, c1 procstat.Sample, window float64, bytes uint64) Cost {
	c := Cost{
		CPUSeconds: Round(TicksToSec(c1.CPUTicks-c0.CPUTicks), 3),
		SysSeconds: Round(TicksToSec(c1.SysTicks-c0.SysTicks), 3),
	}
	if window > 0 {
		c.CPUPct = Round(100*c.CPUSeconds/window, 1)
	}
	if gbit := float64(bytes) * 8 / 1e9; gbit > 0 {
		c.CPUPerGbit = Round(c.CPUSeconds/gbit, 4)
	}
	return c
}

// PerReader is (n - zero) / readers to 1 decimal, 0 without readers: the
// KiB each reader adds.
func PerReader(n, zero uint64, readers int) float64 {
	if readers <= 0 {
		return 0
	}
	return Round((float64(n)-float64(zero))/float64(readers), 1)
}

// StartCPUProfile starts a CPU profile of this process into path (none
// when path is empty) and returns what stops it.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
