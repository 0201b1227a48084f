package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/srt"
)

// Per-stream SRT settings of the interop tests ([[srt_stream]]).
const (
	pass128 = "interop-aes128-secret"
	pass256 = "interop-aes256-secret-longer"
	passLat = "interop-latency-secret"
)

const interopStreams = `
[[srt_stream]]
key = "live/aes128"
publish_passphrase = "` + pass128 + `"
read_passphrase = "` + pass128 + `"
[[srt_stream]]
key = "live/aes256"
publish_passphrase = "` + pass256 + `"
read_passphrase = "` + pass256 + `"
[[srt_stream]]
key = "live/lat"
publish_passphrase = "` + passLat + `"
latency = "700ms"
`

// srtPeer is a real SRT implementation driven from the command line.
type srtPeer struct {
	name string
	// publish starts a publisher of secs seconds of H.264 (+AAC where the
	// tool makes it) to the caller URL parts.
	publish func(t *testing.T, port int, streamID, pass string, keyLen int, secs int) *exec.Cmd
	// read records about secs seconds into a TS file and returns it.
	read func(t *testing.T, port int, streamID, pass string, keyLen int, secs int) (string, error)
}

func srtURL(port int, streamID, pass string, keyLen int, extra string) string {
	u := fmt.Sprintf("srt://127.0.0.1:%d?streamid=%s", port, streamID)
	if pass != "" {
		u += fmt.Sprintf("&passphrase=%s&pbkeylen=%d", pass, keyLen)
	}
	return u + extra
}

func ffmpegTS(secs int) []string {
	src := testmedia.Source{Width: 320, Height: 180, Audio: true, Realtime: true, GOP: 25,
		Duration: time.Duration(secs) * time.Second}.Defaults()
	args := src.Args("srt://placeholder")
	return args[:len(args)-1] // ends with -f mpegts: the caller adds the output
}

func startCmd(t *testing.T, stdout string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a shell pipeline is killed as a whole
	logs := &testmedia.LogBuffer{}
	cmd.Stderr = logs
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
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, logs)
		}
	})
	return cmd
}

// runFor runs a recorder for secs seconds, then stops it.
func runFor(t *testing.T, secs int, stdout, name string, args ...string) error {
	cmd := startCmd(t, stdout, name, args...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Duration(secs) * time.Second):
		cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	return nil
}

var srtPeers = []srtPeer{
	{
		name: "ffmpeg",
		publish: func(t *testing.T, port int, sid, pass string, kl, secs int) *exec.Cmd {
			return startCmd(t, "", "ffmpeg", append(ffmpegTS(secs), srtURL(port, sid, pass, kl, ""))...)
		},
		read: func(t *testing.T, port int, sid, pass string, kl, secs int) (string, error) {
			out := filepath.Join(t.TempDir(), "ffmpeg.ts")
			cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", srtURL(port, sid, pass, kl, ""),
				"-t", fmt.Sprint(secs), "-c", "copy", "-f", "mpegts", "-y", out)
			b, err := cmd.CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("ffmpeg read: %v: %s", err, b)
			}
			return out, nil
		},
	},
	{
		name: "srt-live-transmit",
		publish: func(t *testing.T, port int, sid, pass string, kl, secs int) *exec.Cmd {
			ff := "ffmpeg " + strings.Join(quoteArgs(append(ffmpegTS(secs), "-")), " ")
			return startCmd(t, "", "sh", "-c", ff+" | srt-live-transmit -q file://con '"+srtURL(port, sid, pass, kl, "")+"'")
		},
		read: func(t *testing.T, port int, sid, pass string, kl, secs int) (string, error) {
			out := filepath.Join(t.TempDir(), "slt.ts")
			err := runFor(t, secs, out, "srt-live-transmit", "-q", srtURL(port, sid, pass, kl, ""), "file://con")
			return out, trimTS(out, err)
		},
	},
	{
		name: "gstreamer",
		// GStreamer sends a TS file ffmpeg made, paced by its timestamps
		// (x264enc behind srtsink made no IDR frame after the first one,
		// which srtsink drops before it is connected).
		publish: func(t *testing.T, port int, sid, pass string, kl, secs int) *exec.Cmd {
			src := filepath.Join(t.TempDir(), "src.ts")
			gen := testmedia.Source{Width: 320, Height: 180, Audio: true, GOP: 25, Duration: time.Duration(secs) * time.Second}.Defaults()
			args := gen.Args("srt://placeholder")
			if b, err := exec.Command("ffmpeg", append(append(args[:len(args)-1], "-y"), src)...).CombinedOutput(); err != nil {
				t.Fatalf("make %s: %v: %s", src, err, b)
			}
			gst := []string{"-q", "filesrc", "location=" + src, "!", "tsparse", "set-timestamps=true", "!",
				"srtsink", "sync=true", fmt.Sprintf("uri=srt://127.0.0.1:%d", port), "streamid=" + sid}
			if pass != "" {
				gst = append(gst, "passphrase="+pass, fmt.Sprintf("pbkeylen=%d", kl))
			}
			return startCmd(t, "", "gst-launch-1.0", gst...)
		},
		read: func(t *testing.T, port int, sid, pass string, kl, secs int) (string, error) {
			out := filepath.Join(t.TempDir(), "gst.ts")
			args := []string{"-q", "-e", "srtsrc", fmt.Sprintf("uri=srt://127.0.0.1:%d", port), "streamid=" + sid}
			if pass != "" {
				args = append(args, "passphrase="+pass, fmt.Sprintf("pbkeylen=%d", kl))
			}
			args = append(args, "!", "filesink", "location="+out)
			err := runFor(t, secs, "", "gst-launch-1.0", args...)
			return out, trimTS(out, err)
		},
	},
}

// trimTS cuts a recording that was stopped mid-stream before its last
// PES start, so the frame being written when it stopped is not counted
// as a decode error.
func trimTS(path string, err error) error {
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	cut := len(b) - len(b)%188
	for i := cut - 188; i >= 0; i -= 188 {
		pid := int(b[i+1]&0x1f)<<8 | int(b[i+2])
		if b[i] == 0x47 && b[i+1]&0x40 != 0 && pid >= 0x20 && pid != 0x1fff {
			cut = i
			break
		}
	}
	return os.WriteFile(path, b[:cut], 0o644)
}

func quoteArgs(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return out
}

// srtConnStats is one SRT connection in /v1/streams/{key}.
type srtConnStats = srt.ConnStats

// streamSRT is the stream's SRT connections; none while it is not live.
func streamSRT(t *testing.T, a *agentProc, key string) []srtConnStats {
	t.Helper()
	s, err := a.Client().Stream(context.Background(), key)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("GET stream %s: %v", key, err)
	}
	return s.SRT
}

// streamGone waits until the stream is over (its reconnect grace too).
func streamGone(t *testing.T, a *agentProc, key string) {
	t.Helper()
	testmedia.Eventually(t, 10*time.Second, key+" to end", func() bool {
		_, err := a.Client().Stream(context.Background(), key)
		return client.IsNotFound(err)
	})
}

func waitVideo(t *testing.T, a *agentProc, key string) {
	t.Helper()
	waitStreams(t, a, key+" live with video", func(sr streamsResp) bool {
		for _, s := range sr.Streams {
			if s.Name == key && s.Video != "" {
				return true
			}
		}
		return false
	})
}

// TestSRTInterop: every real SRT peer (ffmpeg, srt-live-transmit,
// GStreamer srtsink/srtsrc; all libsrt) publishes to the binary and
// another one reads back, plain and with AES-128 and AES-256 from
// [[srt_stream]] passphrases; the readers' files decode, and the
// connection stats show the encryption and key length the caller chose.
func TestSRTInterop(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe", "srt-live-transmit", "gst-launch-1.0")
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	a := startAgent(t, interopStreams)
	port := a.ports["srt"]
	modes := []struct {
		name, key, pass string
		keyLen          int
	}{
		{"plain", "live/plain", "", 0},
		{"aes-128", "live/aes128", pass128, 16},
		{"aes-256", "live/aes256", pass256, 32},
	}
	for _, m := range modes {
		for i, pub := range srtPeers {
			rd := srtPeers[(i+1)%len(srtPeers)]
			t.Run(m.name+"/"+pub.name+" to "+rd.name, func(t *testing.T) {
				key := fmt.Sprintf("%s-%d", m.key, i)
				if m.pass != "" {
					key = m.key // the [[srt_stream]] entry; the cases run one after the other
				}
				p := pub.publish(t, port, "publish:"+key, m.pass, m.keyLen, 8)
				var conns []srtConnStats
				testmedia.Eventually(t, 10*time.Second, "the publisher's SRT connection", func() bool {
					conns = streamSRT(t, a, key)
					return len(conns) == 1
				})
				waitVideo(t, a, key)
				if len(conns) != 1 || conns[0].Role != "publish" || conns[0].Encrypted != (m.pass != "") || conns[0].KeyLength != m.keyLen {
					t.Errorf("publisher's SRT stats %+v, want one publish, encrypted %v, key length %d", conns, m.pass != "", m.keyLen)
				}
				file, err := rd.read(t, port, "read:"+key, m.pass, m.keyLen, 3)
				if err != nil {
					t.Fatal(err)
				}
				res, err := testmedia.Analyze(context.Background(), file)
				if err != nil {
					t.Fatal(err)
				}
				if res.VideoCodec != "h264" || res.Width != 320 || res.VideoFrames < 40 || res.DecodeErrors != "" || !res.FirstKey {
					t.Errorf("%s read %+v, want >= 40 decodable 320x180 h264 frames from a keyframe", rd.name, res)
				}
				syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
				streamGone(t, a, key)
			})
		}
	}
}

// TestSRTWrongPassphrase: a wrong passphrase is refused in the handshake,
// for a publisher and for a reader, the agent logs why, and the caller
// is told (ffmpeg exits with a connection error).
func TestSRTWrongPassphrase(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "srt-live-transmit")
	a := startAgent(t, interopStreams)
	port := a.ports["srt"]
	// a reader is checked against a live stream (else it is "not found")
	startCmd(t, "", "ffmpeg", append(ffmpegTS(30), srtURL(port, "publish:live/aes256", pass256, 32, ""))...)
	waitVideo(t, a, "live/aes256")
	cases := []struct {
		name, streamID, pass string
		logWant              string
	}{
		{"publisher", "publish:live/aes128", "not-the-right-passphrase", "publish live/aes128: wrong passphrase"},
		{"reader", "read:live/aes256", "not-the-right-passphrase", "read live/aes256: wrong passphrase"},
		{"publisher without one", "publish:live/aes128", "", "publish live/aes128: needs a passphrase and the caller sent none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out []byte
			var err error
			if strings.HasPrefix(c.streamID, "publish:") {
				out, err = exec.Command("ffmpeg", append(ffmpegTS(1), srtURL(port, c.streamID, c.pass, 16, ""))...).CombinedOutput()
			} else {
				out, err = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", srtURL(port, c.streamID, c.pass, 32, ""),
					"-t", "1", "-f", "null", "-").CombinedOutput()
			}
			if err == nil {
				t.Fatalf("ffmpeg succeeded with a wrong passphrase: %s", out)
			}
			testmedia.Eventually(t, 5*time.Second, "the refusal in the agent log", func() bool {
				return strings.Contains(a.logs.String(), c.logWant)
			})
		})
	}
}

// TestSRTCallerInterop: relaymesh as the caller (a flow's srt-caller
// source) pulls from srt-live-transmit listening with AES-256; with the
// right passphrase the flow's players get the stream, with a wrong one
// the flow shows libsrt's reason.
func TestSRTCallerInterop(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe", "srt-live-transmit")
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	// the listener is on loopback, which the fetch policy denies by default
	a := startAgent(t, "[objects]\nfetch_allow = [\"127.0.0.1/32\"]\n")
	cases := []struct {
		name    string
		pass    string
		want    string // in the flow's JSON
		streams bool
	}{
		{"right passphrase", pass256, "", true},
		{"wrong passphrase", "not-the-passphrase-at-all", "wrong passphrase", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lport := testmedia.FreePort(t)
			ff := "ffmpeg " + strings.Join(quoteArgs(append(ffmpegTS(30), "-")), " ")
			startCmd(t, "", "sh", "-c", ff+fmt.Sprintf(" | srt-live-transmit -q file://con 'srt://:%d?mode=listener&passphrase=%s&pbkeylen=32'", lport, pass256))
			id := fmt.Sprintf("caller%d", i)
			ctx := context.Background()
			flows := a.Client().Flows()
			spec := flow.Spec{ID: id,
				Source:  flow.Source{Type: flow.SrcSRTCaller, URL: fmt.Sprintf("srt://127.0.0.1:%d?streamid=x", lport), Passphrase: c.pass, PBKeyLen: 32},
				Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}}
			if _, err := flows.Create(ctx, spec); err != nil {
				t.Fatalf("create: %v", err)
			}
			if _, err := flows.Do(ctx, id, "start"); err != nil {
				t.Fatalf("start: %v", err)
			}
			if c.streams {
				waitVideo(t, a, "flow/"+id)
				res, err := testmedia.Read(context.Background(), a.flv("flow/"+id), 3*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if res.VideoCodec != "h264" || res.VideoFrames < 40 || res.DecodeErrors != "" {
					t.Errorf("player of the pulled flow got %+v", res)
				}
				return
			}
			testmedia.Eventually(t, 15*time.Second, "the flow to show "+c.want, func() bool {
				v, err := flows.Get(ctx, id)
				if err != nil {
					t.Fatalf("GET flow %s: %v", id, err)
				}
				b, _ := json.Marshal(v)
				return strings.Contains(string(b), c.want)
			})
		})
	}
}

// TestSRTStreamLatency: [[srt_stream]] latency is what the listener
// negotiates for that stream's connections (read back from the
// connection's stats in the API); a caller asking for more gets its own.
func TestSRTStreamLatency(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	a := startAgent(t, interopStreams)
	port := a.ports["srt"]
	cases := []struct {
		name      string
		key       string
		pass      string
		callerLat time.Duration
		want      int
	}{
		{"stream latency wins over the caller's smaller one", "live/lat", passLat, 200 * time.Millisecond, 700},
		{"a caller asking more gets its own", "live/lat", passLat, 900 * time.Millisecond, 900},
		{"other streams: the listener's 120 ms", "live/other", "", 80 * time.Millisecond, 120},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// ffmpeg's latency is in microseconds
			p := startCmd(t, "", "ffmpeg", append(ffmpegTS(20), srtURL(port, "publish:"+c.key, c.pass, 16,
				fmt.Sprintf("&latency=%d", c.callerLat.Microseconds())))...)
			var conns []srtConnStats
			testmedia.Eventually(t, 10*time.Second, "the publisher's SRT connection", func() bool {
				conns = streamSRT(t, a, c.key)
				return len(conns) == 1
			})
			if conns[0].LatencyMs != c.want {
				t.Errorf("SRT stats %+v, want one connection with latency %d ms", conns, c.want)
			}
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			streamGone(t, a, c.key)
		})
	}
}

// TestSRTFlowListener: a flow's srt-listener source and output set the
// passphrase and latency of their connections on the node's listener: a
// publisher needs the source's passphrase and gets its latency, a player
// of flow/<id> needs the output's.
func TestSRTFlowListener(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	a := startAgent(t, "")
	port := a.ports["srt"]
	const srcPass, outPass = "flow-source-secret", "flow-output-secret"
	ctx := context.Background()
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "sl",
		Source:  flow.Source{Type: flow.SrcSRTListener, Stream: "live/flowin", Passphrase: srcPass, LatencyMS: 500},
		Outputs: []flow.Output{{Name: "srt", Type: flow.OutSRTListener, Passphrase: outPass}}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(ctx, "sl", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	if out, err := exec.Command("ffmpeg", append(ffmpegTS(1), srtURL(port, "publish:live/flowin", "", 16, ""))...).CombinedOutput(); err == nil {
		t.Fatalf("a publisher without the source's passphrase was accepted: %s", out)
	}
	testmedia.Eventually(t, 5*time.Second, "the refusal in the log", func() bool {
		return strings.Contains(a.logs.String(), "publish live/flowin: needs a passphrase")
	})
	startCmd(t, "", "ffmpeg", append(ffmpegTS(20), srtURL(port, "publish:live/flowin", srcPass, 32, "&latency=100000"))...)
	var conns []srtConnStats
	testmedia.Eventually(t, 10*time.Second, "the publisher's SRT connection", func() bool {
		conns = streamSRT(t, a, "live/flowin")
		return len(conns) == 1
	})
	if !conns[0].Encrypted || conns[0].KeyLength != 32 || conns[0].LatencyMs != 500 {
		t.Errorf("publisher's SRT stats %+v, want encrypted, key length 32, the source's latency 500 ms", conns[0])
	}
	waitVideo(t, a, "flow/sl")
	if _, err := testmedia.Read(context.Background(), srtURL(port, "read:flow/sl", srcPass, 16, ""), 2*time.Second); err == nil {
		t.Errorf("a player with the source's passphrase (not the output's) was served")
	}
	res, err := testmedia.Read(context.Background(), srtURL(port, "read:flow/sl", outPass, 16, ""), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoCodec != "h264" || res.VideoFrames < 40 || res.DecodeErrors != "" {
		t.Errorf("player of flow/sl got %+v", res)
	}
}
