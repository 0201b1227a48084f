package srt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

type testServer struct {
	srv  *Server
	hub  *media.Hub
	logs *testmedia.LogBuffer
	port int
	url  string
}

func startServer(t *testing.T, cfg Config, hcfg media.HubConfig) *testServer {
	t.Helper()
	log, logs := testmedia.Logger(t, "server")
	hub := media.NewHub(hcfg, log)
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv, err := New(cfg, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		srv.Close()
		hub.Close()
	})
	port := srv.Addr().(*net.UDPAddr).Port
	return &testServer{srv: srv, hub: hub, logs: logs, port: port, url: fmt.Sprintf("srt://127.0.0.1:%d", port)}
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
}

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testmedia.Eventually

type proc struct {
	cmd    *exec.Cmd
	stderr *testmedia.LogBuffer
	done   chan error
}

func start(t *testing.T, stdout string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	p := &proc{cmd: cmd, stderr: &testmedia.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s did not finish within %s; stderr:\n%s", p.cmd.Path, d, p.stderr.String())
	}
	return nil
}

// publishArgs is an ffmpeg command line that publishes a lavfi source of
// secs seconds over SRT, and also writes what it sent to teeFile.
func publishArgs(url, teeFile, vcodec string, secs int) []string {
	v := []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "50"}
	if vcodec == "hevc" {
		v = []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=50"}
	}
	args := []string{"-hide_banner", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine", "-t", strconv.Itoa(secs)}
	args = append(args, v...)
	args = append(args, "-c:a", "aac", "-map", "0:v", "-map", "1:a")
	if teeFile == "" {
		return append(args, "-f", "mpegts", url)
	}
	return append(args, "-f", "tee", "[f=mpegts]"+url+"|[f=mpegts]"+teeFile)
}

type probe struct {
	codec         string
	width, height int
	pts           []float64 // packet dts in seconds, in order
}

// probeFile reads the streams and packet timestamps of a media file.
func probeFile(t *testing.T, path string) map[string]*probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"stream=index,codec_type,codec_name,width,height", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	res := map[string]*probe{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		p := &probe{codec: f[1]}
		if len(f) >= 5 {
			p.width, _ = strconv.Atoi(f[3])
			p.height, _ = strconv.Atoi(f[4])
		}
		res[f[2]] = p
	}
	for _, kind := range []string{"video", "audio"} {
		if res[kind] == nil {
			continue
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind[:1], "-show_entries",
			"packet=dts_time", "-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("ffprobe packets %s: %v", path, err)
		}
		for _, l := range strings.Fields(string(out)) {
			if v, err := strconv.ParseFloat(strings.Trim(l, ","), 64); err == nil {
				res[kind].pts = append(res[kind].pts, v)
			}
		}
	}
	return res
}

// decodeErrors returns what ffmpeg prints while decoding path.
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	out, _ := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// ccErrors counts continuity errors on the elementary stream PIDs of a TS
// file (PSI PIDs are regenerated per reader and not checked).
func ccErrors(b []byte) (errs, packets int) {
	last := map[int]int{}
	for ; len(b) >= 188; b = b[188:] {
		if b[0] != 0x47 {
			return errs + 1000, packets
		}
		pid := int(b[1]&0x1f)<<8 | int(b[2])
		if pid < 0x20 || pid == 0x1000 || pid == 0x1fff || b[3]&0x10 == 0 {
			continue
		}
		packets++
		cc := int(b[3] & 0x0f)
		if l, ok := last[pid]; ok && cc != (l+1)&0x0f {
			errs++
		}
		last[pid] = cc
	}
	return errs, packets
}

// countFrom counts the values >= from (with a little slack).
func countFrom(pts []float64, from float64) int {
	n := 0
	for _, v := range pts {
		if v >= from-0.001 {
			n++
		}
	}
	return n
}

// countRange counts the values in [from, to] (with a little slack).
func countRange(pts []float64, from, to float64) int {
	n := 0
	for _, v := range pts {
		if v >= from-0.001 && v <= to+0.001 {
			n++
		}
	}
	return n
}

func writeFLVFile(t *testing.T, path string, pkts []*unit.Packet) {
	t.Helper()
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	for _, p := range pkts {
		b = unit.AppendFLVTag(b, p.Kind, uint32(p.Time), p.Payload)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tmp(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }

var errAny = errors.New("any")

var execCommand = exec.Command

func osWriteFile(p, v string) error { return os.WriteFile(p, []byte(v), 0o644) }

type mediaPacket = unit.Packet

func subscribeFLV() media.SubscribeOptions {
	return media.SubscribeOptions{Format: media.FormatFLV, Info: media.ReaderInfo{Protocol: "test"}}
}

// republish publishes key with ffmpeg (secs long) until it is live, lets
// between act on that first encoder (nil: nothing), publishes key again
// from the same host and waits until the second session has taken the
// stream over. It returns the first encoder, the stream and the first
// publisher.
func republish(t *testing.T, ts *testServer, key string, secs int, between func(first *proc)) (*proc, *media.Stream, media.PublisherInfo) {
	t.Helper()
	url := ts.url + "?streamid=publish:" + key
	first := start(t, "", "ffmpeg", publishArgs(url, "", "", secs)...)
	waitFor(t, 10*time.Second, "the first publisher live", func() bool {
		st := ts.hub.Stream(key)
		return st != nil && st.Codecs().Video != ""
	})
	st := ts.hub.Stream(key)
	p1, _ := st.Publisher()
	if between != nil {
		between(first)
	}
	start(t, "", "ffmpeg", publishArgs(url, "", "", secs)...)
	waitFor(t, 20*time.Second, "the second session from the same host to take over", func() bool {
		p2, ok := st.Publisher()
		return ok && p2.Remote != p1.Remote
	})
	return first, st, p1
}

// freeze stops an encoder (SIGSTOP: its SRT connection is not timed out
// yet) until the test ends.
func freeze(t *testing.T) func(*proc) {
	return func(p *proc) {
		p.cmd.Process.Signal(syscall.SIGSTOP)
		t.Cleanup(func() { p.cmd.Process.Signal(syscall.SIGCONT) })
	}
}
