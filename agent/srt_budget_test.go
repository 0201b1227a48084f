package agent_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/srt"
)

// TestSRTReceiveMemoryBudget: srt.max_receive_memory through the binary.
// The agent starts with the default (a quarter of the machine's memory,
// in /metrics); a reload sets a budget of three publishers' receive
// buffers (limits.max_bitrate sizes each). A canary and two more SRT
// publishers are accepted, the next one is refused in the handshake
// (ffmpeg and srt-live-transmit say REJECT; the agent logs code 1402 and
// the key), and once one publisher is gone a new one is accepted. The
// canary keeps flowing throughout.
func TestSRTReceiveMemoryBudget(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "srt-live-transmit")
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	const limits = "max_bitrate = \"2M\"\n"
	a := startAgentIn(t, t.TempDir(), "test-node", limits, env)
	port := a.ports["srt"]
	gauge := func(name string) float64 {
		t.Helper()
		v, ok := promtest.Value(promtest.Scrape(t, a.api("/metrics")), name, nil)
		if !ok {
			t.Fatalf("/metrics has no %s", name)
		}
		return v
	}
	if got, want := gauge("relaymesh_srt_receive_memory_limit_bytes"), float64(srt.DefaultReceiveMemory()); got != want {
		t.Errorf("limit at start without the key: %v, want the default %v", got, want)
	}

	a.writeConfig(t, limits)
	editConfig(t, a, "[srt]\n", "[srt]\nmax_receive_memory = \"3MiB\"\n")
	if ok, errOut := reloadCmd(t, env); !ok {
		t.Fatalf("reload refused: %s", errOut)
	}
	if got := gauge("relaymesh_srt_receive_memory_limit_bytes"); got != 3<<20 {
		t.Fatalf("limit after the reload: %v, want %d", got, 3<<20)
	}

	publish := func(key string) *exec.Cmd {
		return startCmd(t, "", "ffmpeg", append(ffmpegTS(300), srtURL(port, "publish:"+key, "", 0, ""))...)
	}
	frames := func(key string) int64 {
		t.Helper()
		s, err := a.Client().Stream(context.Background(), key)
		if err != nil {
			t.Fatalf("stream %s: %v", key, err)
		}
		return s.Frames
	}
	canaryFlows := func(what string) {
		t.Helper()
		n := frames("live/canary")
		testmedia.Eventually(t, 20*time.Second, "the canary's frames to advance "+what, func() bool {
			return frames("live/canary") >= n+25
		})
	}

	publish("live/canary")
	waitVideo(t, a, "live/canary")
	var buf int64
	testmedia.Eventually(t, 10*time.Second, "the canary's SRT stats", func() bool {
		if c := streamSRT(t, a, "live/canary"); len(c) == 1 {
			buf = c[0].ReceiveBufferBytes
		}
		return buf > 0
	})
	n := int((3 << 20) / buf)
	if n < 2 {
		t.Fatalf("a publisher's receive buffer is %d bytes: the 3MiB budget holds %d, the test needs 2 or more", buf, n)
	}
	t.Logf("a publisher's receive buffer: %d bytes; the budget holds %d", buf, n)
	pubs := make([]*exec.Cmd, 0, n-1)
	for i := 1; i < n; i++ {
		key := fmt.Sprintf("live/p%d", i)
		pubs = append(pubs, publish(key))
		waitVideo(t, a, key)
	}
	if got := gauge("relaymesh_srt_receive_memory_reserved_bytes"); got != float64(int64(n)*buf) {
		t.Errorf("reserved with %d publishers of %d bytes: %v", n, buf, got)
	}

	// one more is refused in the handshake, by either tool
	out, err := exec.Command("ffmpeg", append(ffmpegTS(2), srtURL(port, "publish:live/over1", "", 0, ""))...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "REJECT") {
		t.Errorf("ffmpeg beyond the budget: %v, want a refusal (REJECT) in its output:\n%s", err, out)
	}
	ff := "ffmpeg " + strings.Join(quoteArgs(append(ffmpegTS(2), "-")), " ")
	out, _ = exec.Command("sh", "-c", ff+" | srt-live-transmit -a:no file://con '"+srtURL(port, "publish:live/over2", "", 0, "")+"'").CombinedOutput()
	if !strings.Contains(string(out), "REJECT") {
		t.Errorf("srt-live-transmit beyond the budget: want a refusal (REJECT) in its output:\n%s", out)
	}
	for _, key := range []string{"live/over1", "live/over2"} {
		testmedia.Eventually(t, 10*time.Second, "the refusal of "+key+" with its code and the key in the log", func() bool {
			for _, l := range strings.Split(a.logs.String(), "\n") {
				if strings.Contains(l, `"streamid":"publish:`+key+`"`) && strings.Contains(l, `"code":1402`) &&
					strings.Contains(l, "srt.max_receive_memory = 3.0 MiB") {
					return true
				}
			}
			return false
		})
		if s := streamSRT(t, a, key); len(s) != 0 {
			t.Errorf("%s has SRT connections after its refusal: %+v", key, s)
		}
	}
	canaryFlows("after the refusals")

	// a publisher that dies (SIGKILL: its connection ends at the peer
	// idle timeout) gives its buffer back, and a new one gets in
	syscall.Kill(-pubs[0].Process.Pid, syscall.SIGKILL)
	streamGone(t, a, "live/p1")
	testmedia.Eventually(t, 20*time.Second, "the dead publisher's buffer back in /metrics", func() bool {
		return gauge("relaymesh_srt_receive_memory_reserved_bytes") == float64(int64(n-1)*buf)
	})
	publish("live/again")
	waitVideo(t, a, "live/again")
	canaryFlows("after the new publisher")
}
