package srt

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Budget is the node's receive memory for accepted SRT connections: the
// sum of their receive buffers (SRTO_RCVBUF, which libsrt fills from its
// packet pool as data arrives, up to that size, and holds as long as the
// caller's latency asks) stays under the limit. A handshake whose buffer
// does not fit is refused before it completes (RejXOverload); what a
// connection reserved comes back when it ends, however it ends. One
// Budget is shared by every listener of the node (the SRT listener and
// the backbone). A nil *Budget is unlimited.
type Budget struct {
	name string // the config key, named in refusals

	mu          sync.Mutex
	limit, used int64
}

// NewBudget returns a budget of limit bytes (<= 0: DefaultReceiveMemory)
// whose refusals name the config key name.
func NewBudget(name string, limit int64) *Budget {
	b := &Budget{name: name}
	b.SetLimit(limit)
	return b
}

// SetLimit changes the limit (<= 0: DefaultReceiveMemory) for the
// connections that come after it; connections already holding more keep
// their buffers, and new ones are refused until enough of them ended.
func (b *Budget) SetLimit(limit int64) {
	if limit <= 0 {
		limit = DefaultReceiveMemory()
	}
	b.mu.Lock()
	b.limit = limit
	b.mu.Unlock()
}

// Limit is the limit in force, in bytes.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// Reserved is what the open (and handshaking) connections hold, in bytes.
func (b *Budget) Reserved() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// reserve takes n bytes; release (idempotent) gives them back. It does
// not block: it runs inside libsrt's handshake. force takes them even
// over the limit (a listener whose connections are counted, never
// refused: Config.BudgetCountOnly).
func (b *Budget) reserve(n int64, force bool) (release func(), err error) {
	return b.reserveFreeing(n, 0, force)
}

// reserveFreeing is reserve for a connection that replaces one holding
// freeing bytes (a same-host publisher taking over its stale session,
// which is closed when the new one attaches): those count as available.
func (b *Budget) reserveFreeing(n, freeing int64, force bool) (release func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !force && b.used-freeing+n > b.limit {
		return nil, fmt.Errorf("the node's SRT receive memory is taken: %s of %s = %s reserved by open connections, this one needs %s",
			sizeText(b.used), b.name, sizeText(b.limit), sizeText(n))
	}
	b.used += n
	return sync.OnceFunc(func() {
		b.mu.Lock()
		b.used -= n
		b.mu.Unlock()
	}), nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// DefaultReceiveMemory is the budget when none is configured: a quarter
// of the memory the node may use (the machine's RAM, or the memory limit
// of the agent's cgroup when lower), so that receive buffers filled by
// callers can never take the node's memory; 1 GiB when neither can be
// read.
func DefaultReceiveMemory() int64 {
	return defaultReceiveMemory(physicalMemory(), cgroupMemoryMax("/proc/self/cgroup", "/sys/fs/cgroup"))
}

func defaultReceiveMemory(ram, cgroup int64) int64 {
	m := ram
	if cgroup > 0 && (m <= 0 || cgroup < m) {
		m = cgroup
	}
	if m <= 0 {
		return 1 << 30
	}
	return m / 4
}

// physicalMemory is the machine's RAM in bytes, 0 when unknown.
func physicalMemory() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// cgroupMemoryMax is the lowest memory limit of the process's cgroups
// (read from procFile) and their parents under root: cgroup v2's
// memory.max, v1's memory/.../memory.limit_in_bytes; 0 when there is none.
func cgroupMemoryMax(procFile, root string) int64 {
	b, err := os.ReadFile(procFile)
	if err != nil {
		return 0
	}
	var low int64
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = root, "memory.max"
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			dir, file = path.Join(root, "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			b, err := os.ReadFile(path.Join(dir, p, file))
			if err == nil {
				// "max" (v2) and v1's huge "unlimited" are no limit below RAM
				if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && (low == 0 || v < low) {
					low = v
				}
			}
			if p == "/" {
				break
			}
		}
	}
	return low
}
