package testmedia

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartNginxStopsWorker: once the test that started nginx ends, neither
// the master nor its worker is left running.
func TestStartNginxStopsWorker(t *testing.T) {
	var pids []int
	t.Run("nginx", func(t *testing.T) {
		n := StartNginx(t, "")
		pids = append(pids, n.PID)
		Eventually(t, 5*time.Second, "nginx to start its worker", func() bool {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(n.PID) + "/task/" + strconv.Itoa(n.PID) + "/children")
			if err != nil {
				return false
			}
			f := strings.Fields(string(b))
			pids = pids[:1]
			for _, s := range f {
				p, _ := strconv.Atoi(s)
				pids = append(pids, p)
			}
			return len(f) > 0
		})
	})
	if len(pids) < 2 {
		t.Fatalf("no nginx worker seen (pids %v)", pids)
	}
	for _, p := range pids {
		if err := syscall.Kill(p, 0); err != syscall.ESRCH {
			t.Errorf("nginx process %d still there after its test ended (kill 0: %v)", p, err)
		}
	}
}
