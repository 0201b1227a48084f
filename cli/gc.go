package cli

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target of `relaymesh run`
// when GOGC is not set. The heap is mostly media the GOP caches keep, in
// pointer-free blocks a collection does not scan, so collecting at 1.5x
// the live heap instead of Go's 2x costs little CPU and keeps the RSS near
// what is kept (20 SRT publishers at 3 Mbit/s: 2.6 MB each at 100, 1.9 at
// 50, at the same CPU; BENCHMARKS.md). GOGC in the environment wins.
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless GOGC is set, and returns
// the percent in force.
func setGCPercent() int {
	if _, ok := os.LookupEnv("GOGC"); ok {
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}
