package srt

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MinUDPBuffer is the socket buffer size below which SRT at high bitrates
// drops packets in the kernel. The listener asks libsrt for this much
// (SRTO_UDP_RCVBUF), but the kernel caps it at net.core.rmem_max.
const MinUDPBuffer = 8 << 20

// CheckUDPBuffers returns a warning when the kernel's default or maximum
// UDP receive buffer is below MinUDPBuffer, or "" when they are large
// enough (or cannot be read on this system).
func CheckUDPBuffers() string {
	return checkUDPBuffers("/proc/sys/net/core")
}

func checkUDPBuffers(dir string) string {
	var low []string
	for _, name := range []string{"rmem_default", "rmem_max"} {
		b, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			continue
		}
		if v < MinUDPBuffer {
			low = append(low, fmt.Sprintf("net.core.%s=%d", name, v))
		}
	}
	if len(low) == 0 {
		return ""
	}
	return fmt.Sprintf("UDP receive buffers are small for SRT (%s, want >= %d): packets will be lost at high bitrates; install the relaymesh sysctl drop-in or run: sysctl -w net.core.rmem_max=%d net.core.rmem_default=%d",
		strings.Join(low, ", "), MinUDPBuffer, MinUDPBuffer, MinUDPBuffer)
}
