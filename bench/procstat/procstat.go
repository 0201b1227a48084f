// Package procstat samples CPU time and resident memory of a process tree
// from /proc, for the benchmark readers.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const ClockTicks = 100

// Sample is the CPU time and resident memory of a process tree.
type Sample struct {
	CPUTicks uint64 // utime + stime, in clock ticks
	SysTicks uint64 // stime alone (time in the kernel, e.g. in send calls)
	RSSKiB   uint64 // VmRSS
	AnonKiB  uint64 // RssAnon: VmRSS without file pages (the binary's text) and shared memory
	HWMKiB   uint64 // VmHWM (peak RSS)
	PIDs     int
}

// ParseStat returns ppid, utime+stime and stime from the text of
// /proc/PID/stat. The command name may hold spaces and parentheses, so
// fields are counted from the last ')'.
func ParseStat(b []byte) (ppid int, ticks, sys uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("stat ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("stat utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("stat stime: %w", err)
	}
	return ppid, ut + st, st, nil
}

// ParseStatus returns VmRSS and VmHWM in KiB from /proc/PID/status.
func ParseStatus(b []byte) (rss, hwm uint64) {
	f := StatusFields(b, "VmRSS", "VmHWM")
	return f[0], f[1]
}

// StatusFields returns the values in KiB of the named fields of
// /proc/PID/status (0 for one that is missing), in the order asked.
func StatusFields(b []byte, keys ...string) []uint64 {
	out := make([]uint64, len(keys))
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		for i, want := range keys {
			if k == want {
				out[i] = n
			}
		}
	}
	return out
}

// SampleTree sums CPU time and RSS over root and all its descendants (so
// nginx's master and worker count together).
func SampleTree(root int) (Sample, error) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	ticks := map[int]uint64{}
	sys := map[int]uint64{}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		pp, t, st, err := ParseStat(b)
		if err != nil {
			continue
		}
		parent[pid], ticks[pid], sys[pid] = pp, t, st
	}
	if _, ok := parent[root]; !ok {
		return Sample{}, fmt.Errorf("process %d is not running", root)
	}
	inTree := func(pid int) bool {
		for i := 0; i < 64 && pid > 1; i++ {
			if pid == root {
				return true
			}
			pid = parent[pid]
		}
		return pid == root
	}
	var s Sample
	for pid := range parent {
		if !inTree(pid) {
			continue
		}
		s.PIDs++
		s.CPUTicks += ticks[pid]
		s.SysTicks += sys[pid]
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			f := StatusFields(b, "VmRSS", "VmHWM", "RssAnon")
			s.RSSKiB += f[0]
			s.HWMKiB += f[1]
			s.AnonKiB += f[2]
		}
	}
	return s, nil
}
