package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// slowLink is a TCP proxy in front of the agent's RTMP port that plays a
// player's network: it forwards the agent's bytes, or stops reading them
// while paused. Its upstream socket has a small receive buffer and MSS,
// so the agent's send queue fills after about 100 kB and the agent's
// player then waits for the network, as behind a stalled link.
type slowLink struct {
	ln     net.Listener
	paused atomic.Bool
}

func newSlowLink(t *testing.T, upstream string) *slowLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
			})
		}}
		up, err := d.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(up, c)
		buf := make([]byte, 4096)
		for {
			if l.paused.Load() {
				time.Sleep(10 * time.Millisecond) // the agent's send queue fills
				continue
			}
			n, err := up.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return l
}

func (l *slowLink) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// streamCounter reads one counter of a stream from /metrics (0 when the
// stream has no sample).
func streamCounter(a *agentProc, name, key string) float64 {
	mfs, err := promtest.TryScrape(a.api("/metrics"))
	if err != nil {
		return -1
	}
	v, _ := promtest.Value(mfs, name, map[string]string{"stream": key})
	return v
}

// stallAndResume pauses the link until the agent's player for key is
// blocked on it (its sent bytes stop growing for 1.5 s, which holds at
// least two keyframes of the stream below), then lets it
// through again and waits until the player has sent twice more, so the
// reader has been asked for packets after the stall.
func stallAndResume(t *testing.T, a *agentProc, l *slowLink, key string) {
	t.Helper()
	l.paused.Store(true)
	var last float64
	var since time.Time
	poll.Until(t, 60*time.Second, "the agent's RTMP player blocked on the paused link", func() bool {
		v := streamCounter(a, "relaymesh_stream_sent_bytes_total", key)
		if v != last || since.IsZero() {
			last, since = v, time.Now()
			return false
		}
		return time.Since(since) >= 1500*time.Millisecond
	})
	l.paused.Store(false)
	for range 2 {
		prev := streamCounter(a, "relaymesh_stream_sent_bytes_total", key)
		poll.Until(t, 30*time.Second, "the player sending again", func() bool {
			return streamCounter(a, "relaymesh_stream_sent_bytes_total", key) > prev
		})
	}
}

// smallStream starts an agent with extra in [limits] and a reload
// environment, and publishes key to it over RTMP: 64 kbit/s CBR, 10 fps,
// a keyframe every 0.5 s, in real time for 5 minutes. The 64 KiB byte
// bound of the hub's slack before the GOP is about 8 s of it.
func smallStream(t *testing.T, key, extra string) (*agentProc, []string) {
	t.Helper()
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	a := startAgentIn(t, t.TempDir(), "test-node", extra, env)
	src := testmedia.Source{Width: 160, Height: 96, FPS: 10, GOP: 5, Bitrate: "64k", CBR: true,
		Realtime: true, Duration: 5 * time.Minute}
	testmedia.Publish(t, context.Background(), src, a.rtmp(key))
	waitVideo(t, a, key)
	return a, env
}

// TestReloadMaxReaderLag: limits.max_reader_lag changed by reload applies
// to a player already attached. An RTMP player (ffmpeg) behind a link
// that stalls for about 1.5 s catches up without a skip under 60s; the
// same stall after a reload to 300ms makes it skip to a newer keyframe
// (the skips counter in /metrics). The stream is small (64 kbit/s CBR, a
// keyframe every 0.5 s) so the agent keeps about 6 s of media before the
// newest keyframe (64 kB of slack) and the stall is within it: the first
// stall's skip count shows the ring did not overrun.
func TestReloadMaxReaderLag(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	const key = "live/lag"
	limits := func(lag string) string { return fmt.Sprintf("max_reader_lag = %q\nwrite_timeout = \"60s\"\n", lag) }
	a, env := smallStream(t, key, limits("60s"))
	link := newSlowLink(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(a.ports["rtmp"])))
	startCmd(t, "", "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", "rtmp://127.0.0.1:"+strconv.Itoa(link.port())+"/"+key, "-f", "null", "-")
	poll.Until(t, 20*time.Second, "the player's first bytes", func() bool {
		return streamCounter(a, "relaymesh_stream_sent_bytes_total", key) > 0
	})

	stallAndResume(t, a, link, key)
	if s := streamCounter(a, "relaymesh_stream_reader_skips_total", key); s != 0 {
		t.Fatalf("reader skips = %v after a stall of about a second under max_reader_lag = 60s, want 0", s)
	}

	a.writeConfig(t, limits("300ms"))
	if ok, errOut := reloadCmd(t, env); !ok {
		t.Fatalf("reload refused: %s", errOut)
	}
	stallAndResume(t, a, link, key)
	if s := streamCounter(a, "relaymesh_stream_reader_skips_total", key); s < 1 {
		t.Fatalf("reader skips = %v after the same stall under the reloaded max_reader_lag = 300ms, want at least 1", s)
	}
}

// TestReloadSRTTimeouts: the SRT listener's timeouts changed by reload
// apply to the connections that come after it. Both start at 60s; after
// a reload to 2s an SRT publisher that goes silent (its process stopped,
// so not even keepalives arrive) is dropped by srt.peer_idle_timeout,
// and one that keeps the connection alive but sends no media is dropped
// by limits.read_timeout with the reason in the log. Either would need a
// minute under the old values; the waits end long before.
func TestReloadSRTTimeouts(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "srt-live-transmit")
	env := []string{"RUNTIME_DIRECTORY=" + t.TempDir()}
	a := startAgentIn(t, t.TempDir(), "test-node", "", env)
	// reloadTimeouts reloads with limits.read_timeout and srt.peer_idle_timeout
	reloadTimeouts := func(t *testing.T, read, peerIdle string) {
		t.Helper()
		a.writeConfig(t, fmt.Sprintf("read_timeout = %q\n", read))
		editConfig(t, a, "[srt]\n", fmt.Sprintf("[srt]\npeer_idle_timeout = %q\n", peerIdle))
		if ok, errOut := reloadCmd(t, env); !ok {
			t.Fatalf("reload refused: %s", errOut)
		}
	}
	reloadTimeouts(t, "60s", "60s")
	port := a.ports["srt"]

	t.Run("srt.peer_idle_timeout", func(t *testing.T) {
		reloadTimeouts(t, "60s", "2s")
		p := startCmd(t, "", "ffmpeg", append(ffmpegTS(120), srtURL(port, "publish:live/idle", "", 0, ""))...)
		waitVideo(t, a, "live/idle")
		if err := syscall.Kill(-p.Process.Pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(-p.Process.Pid, syscall.SIGCONT)
		poll.Until(t, 30*time.Second, "the silent SRT publisher dropped", func() bool {
			return len(streamSRT(t, a, "live/idle")) == 0
		})
		if strings.Contains(a.logs.String(), "publisher sent no media") {
			t.Errorf("the publisher was dropped by read_timeout, not by the peer idle timeout")
		}
	})
	t.Run("limits.read_timeout", func(t *testing.T) {
		reloadTimeouts(t, "2s", "60s")
		// srt-live-transmit connects at once and sends keepalives, but
		// its input (a pipe nobody writes to) has no media
		cmd := exec.Command("srt-live-transmit", "file://con", srtURL(port, "publish:live/mute", "", 0, ""))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		poll.Until(t, 30*time.Second, "the mute SRT publisher dropped for sending no media", func() bool {
			return strings.Contains(a.logs.String(), `"stream":"live/mute"`) &&
				strings.Contains(a.logs.String(), "publisher sent no media for 2s")
		})
	})
}
