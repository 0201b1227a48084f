package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

func binary(t *testing.T) string { return testmedia.Binary(t) }

// agentProc is a running relaymesh binary.
type agentProc struct {
	name   string // [node] name
	cmd    *exec.Cmd
	logs   *testmedia.LogBuffer
	cfg    string
	ports  map[string]int
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, valid after exited
}

const baseConfig = `version = 1
[node]
name = %q
data_dir = %q
log_level = "info"
[rtmp]
listen = "127.0.0.1:%d"
[http]
listen = "127.0.0.1:%d"
[srt]
listen = "127.0.0.1:%d"
[api]
listen = "127.0.0.1:%d"
[limits]
reconnect_grace = "500ms"
%s
`

// ephemeralWebRTC is the [webrtc] of test agents whose extra has none:
// on (the default) with a UDP port the kernel picks, as agents run in
// parallel and the default :8189 would clash.
const ephemeralWebRTC = "[webrtc]\nudp_listen = \"127.0.0.1:0\"\n"

func startAgent(t *testing.T, extra string) *agentProc {
	t.Helper()
	return startNamedAgent(t, "test-node", extra)
}

// startNamedAgent is startAgent for a node called name (several in a
// cluster).
func startNamedAgent(t *testing.T, name, extra string) *agentProc {
	t.Helper()
	return startAgentIn(t, t.TempDir(), name, extra, nil)
}

// startAgentIn is startNamedAgent with the config in dir, the data dir at
// dir/data (which may be a mount the test made) and env added to the
// agent's environment.
func startAgentIn(t *testing.T, dir, name, extra string, env []string) *agentProc {
	t.Helper()
	bin := binary(t)
	ports := freePorts(t, 4)
	p := &agentProc{
		name:   name,
		logs:   &testmedia.LogBuffer{},
		cfg:    filepath.Join(dir, "relaymesh.toml"),
		exited: make(chan struct{}),
		ports:  map[string]int{"rtmp": ports[0], "http": ports[1], "srt": ports[2], "api": ports[3]},
	}
	p.writeConfig(t, extra)
	p.cmd = exec.Command(bin, "run", "-c", p.cfg)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("agent log:\n%s", p.logs)
		}
	})
	testmedia.Eventually(t, 10*time.Second, "agent /healthz", func() bool {
		resp, err := http.Get(p.api("/healthz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func freePorts(t *testing.T, n int) []int { return testmedia.FreePorts(t, n) }

// waitExited fails the test when the agent has not exited within d
// (after a SIGTERM: the drain is bounded, so it must end).
func (p *agentProc) waitExited(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("agent still running %s after SIGTERM", d)
	}
}

func (p *agentProc) writeConfig(t *testing.T, extra string) {
	t.Helper()
	body := fmt.Sprintf(baseConfig, p.name, filepath.Join(filepath.Dir(p.cfg), "data"),
		p.ports["rtmp"], p.ports["http"], p.ports["srt"], p.ports["api"], extra)
	if !strings.Contains(extra, "[webrtc]") {
		body += ephemeralWebRTC
	}
	tmp := p.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.cfg); err != nil {
		t.Fatal(err)
	}
}

func (p *agentProc) api(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", p.ports["api"], path)
}

func (p *agentProc) rtmp(key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", p.ports["rtmp"], key)
}

func (p *agentProc) flv(key string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s.flv", p.ports["http"], key)
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// waitStreams polls /v1/streams until ok holds (failing the test after
// 10 s with what) and returns the listing that satisfied it.
func waitStreams(t *testing.T, a *agentProc, what string, ok func(streamsResp) bool) streamsResp {
	t.Helper()
	var sr streamsResp
	testmedia.Eventually(t, 10*time.Second, what, func() bool {
		sr = streamsResp{}
		getJSON(t, a.api("/v1/streams"), &sr)
		return ok(sr)
	})
	return sr
}

// playerResult is what a background player got.
type playerResult struct {
	res testmedia.Result
	err error
}

// startPlayer plays url for up to timeout in the background; its result
// arrives on the returned channel.
func startPlayer(ctx context.Context, url string, timeout time.Duration) <-chan playerResult {
	done := make(chan playerResult, 1)
	go func() {
		res, err := testmedia.Read(ctx, url, timeout)
		done <- playerResult{res, err}
	}()
	return done
}

// wantEveryFrame waits for the player on done and checks it got every
// frame of src (+-1), all decodable and in order; who and when word the
// failure ("player", "across two reloads").
func wantEveryFrame(t *testing.T, done <-chan playerResult, src testmedia.Source, who, when string) {
	t.Helper()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if d := r.res.VideoFrames - src.Frames(); d < -1 || d > 1 {
		t.Errorf("%s got %d frames %s, want %d (+-1)", who, r.res.VideoFrames, when, src.Frames())
	}
	if r.res.DecodeErrors != "" || r.res.NonMonotonic != 0 {
		t.Errorf("decode errors %q, non-monotonic %d", r.res.DecodeErrors, r.res.NonMonotonic)
	}
}

type streamsResp struct {
	Streams []struct {
		Name         string  `json:"name"`
		Video        string  `json:"video_codec"`
		Audio        string  `json:"audio_codec"`
		Width        int     `json:"width"`
		Height       int     `json:"height"`
		FPS          float64 `json:"fps"`
		VideoBitrate int64   `json:"video_bitrate"`
		AudioBitrate int64   `json:"audio_bitrate"`
		ReaderCount  int     `json:"reader_count"`
		Publisher    *struct {
			Protocol string `json:"protocol"`
			Remote   string `json:"remote"`
		} `json:"publisher"`
	} `json:"streams"`
}

// TestAgentServesAndReloads runs the real binary: ffmpeg publishes, a
// player reads over HTTP-FLV from start to end while the config is
// reloaded twice (once valid with an unrelated change, once invalid); the
// player receives every frame, /v1/streams describes the stream, and
// SIGTERM ends the agent cleanly.
func TestAgentServesAndReloads(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	a := startAgent(t, "")
	ctx := context.Background()
	src := testmedia.Source{Audio: true, Realtime: true, Duration: 8 * time.Second}.Defaults()
	pub := testmedia.Publish(t, ctx, src, a.rtmp("live/reload"))
	waitStreams(t, a, "stream in /v1/streams", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	done := startPlayer(ctx, a.flv("live/reload"), 30*time.Second)
	sr := waitStreams(t, a, "stream to show codecs, a reader and its frame rate", func(sr streamsResp) bool {
		return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1 && sr.Streams[0].FPS > 0 && sr.Streams[0].Width > 0
	})
	s := sr.Streams[0]
	if s.Name != "live/reload" || s.Video != "H264" || s.Audio != "AAC" || s.Width != 640 || s.Height != 360 {
		t.Errorf("stream = %+v, want live/reload H264/AAC 640x360", s)
	}
	if s.Publisher == nil || s.Publisher.Protocol != "rtmp" || !strings.HasPrefix(s.Publisher.Remote, "127.0.0.1:") {
		t.Errorf("publisher = %+v, want rtmp from 127.0.0.1", s.Publisher)
	}
	if s.VideoBitrate <= 0 || s.AudioBitrate <= 0 {
		t.Errorf("bitrates = %d/%d, want > 0", s.VideoBitrate, s.AudioBitrate)
	}

	// a valid reload that changes unrelated settings
	a.writeConfig(t, "max_readers_per_stream = 50\n")
	a.cmd.Process.Signal(syscall.SIGHUP)
	testmedia.Eventually(t, 5*time.Second, "config reloaded", func() bool {
		return strings.Contains(a.logs.String(), "config reloaded")
	})
	// an invalid one is refused and the old config stays in force
	os.WriteFile(a.cfg, []byte("version = 1\n[rtmp]\nlisten = 5\nbogus = true\n"), 0o644)
	a.cmd.Process.Signal(syscall.SIGHUP)
	testmedia.Eventually(t, 5*time.Second, "reload refused", func() bool {
		return strings.Contains(a.logs.String(), "reload refused")
	})

	wantEveryFrame(t, done, src, "player", "across two reloads")
	if err := pub.Wait(10 * time.Second); err != nil {
		t.Errorf("publisher: %v %s", err, pub.Stderr)
	}

	// SIGTERM: the agent exits 0 promptly
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		if a.err != nil {
			t.Errorf("agent exit after SIGTERM: %v", a.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent still running 15 s after SIGTERM")
	}
}

// TestCrossProtocol: any input plays on every output, through the real
// binary. SRT in is read over RTMP, HTTP-FLV and SRT; RTMP in is read over
// SRT. Codecs, resolution, every frame, no decode errors.
func TestCrossProtocol(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	srtURL := func(mode, key string) string {
		return fmt.Sprintf("srt://127.0.0.1:%d?streamid=%s:%s", a.ports["srt"], mode, key)
	}
	cases := []struct {
		name    string
		publish string
		key     string
		reads   map[string]string
	}{
		{"srt in", srtURL("publish", "live/fromsrt"), "live/fromsrt", map[string]string{
			"rtmp": a.rtmp("live/fromsrt"), "httpflv": a.flv("live/fromsrt"), "srt": srtURL("read", "live/fromsrt"),
		}},
		{"rtmp in", a.rtmp("live/fromrtmp"), "live/fromrtmp", map[string]string{
			"srt": srtURL("read", "live/fromrtmp"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := testmedia.Source{Audio: true, Realtime: true, Duration: 6 * time.Second}.Defaults()
			pub := testmedia.Publish(t, ctx, src, tc.publish)
			var sr streamsResp
			testmedia.Eventually(t, 10*time.Second, tc.key+" live", func() bool {
				getJSON(t, a.api("/v1/streams"), &sr)
				for _, s := range sr.Streams {
					if s.Name == tc.key {
						return true
					}
				}
				return false
			})
			type out struct {
				name string
				res  testmedia.Result
				err  error
			}
			results := make(chan out, len(tc.reads))
			for name, url := range tc.reads {
				go func() {
					res, err := testmedia.Read(ctx, url, 20*time.Second)
					results <- out{name, res, err}
				}()
			}
			for range tc.reads {
				r := <-results
				t.Run(r.name, func(t *testing.T) {
					if r.err != nil {
						t.Fatal(r.err)
					}
					if r.res.VideoCodec != "h264" || r.res.AudioCodec != "aac" || r.res.Width != 640 || r.res.Height != 360 {
						t.Errorf("got %s/%s %dx%d, want h264/aac 640x360", r.res.VideoCodec, r.res.AudioCodec, r.res.Width, r.res.Height)
					}
					// SRT loses up to its latency at the very end when the
					// publisher (ffmpeg) hangs up before its data is played out,
					// so allow the last ~0.5 s to be missing.
					if r.res.VideoFrames < src.Frames()-12 || r.res.VideoFrames > src.Frames()+1 {
						t.Errorf("frames = %d, want %d (-12..+1)", r.res.VideoFrames, src.Frames())
					}
					if !r.res.FirstKey || r.res.NonMonotonic != 0 || r.res.DecodeErrors != "" {
						t.Errorf("first key %v, non-monotonic %d, decode errors %q", r.res.FirstKey, r.res.NonMonotonic, r.res.DecodeErrors)
					}
				})
			}
			pub.Wait(10 * time.Second)
		})
	}
}

// TestSignedURLsAndAllowlists: with auth on, ffmpeg publishes only with a
// publish token that `relaymesh sign` made; a play token cannot publish;
// playback needs its own token; a play allowlist that excludes loopback
// refuses the player with a logged reason.
func TestSignedURLsAndAllowlists(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	keyFile := signingKey(t)
	a := startAgent(t, fmt.Sprintf("[auth]\npublish = true\nplay = true\nkey_file = %q\n", keyFile))
	sign := func(action, key string) string {
		out, err := exec.Command(binary(t), "sign", "--key", keyFile, "--action", action, "--ttl", "10m", key).Output()
		if err != nil {
			t.Fatalf("relaymesh sign: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Duration: 6 * time.Second}
	for _, tc := range []struct{ name, url, reason string }{
		{"no token", a.rtmp("live/sec"), "a signed URL is required"},
		{"play token used to publish", a.rtmp(sign("play", "live/sec")), "the signature does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testmedia.Publish(t, ctx, src, tc.url)
			if err := p.Wait(10 * time.Second); err == nil {
				t.Fatalf("publish succeeded; want a refusal")
			}
			testmedia.Eventually(t, 5*time.Second, "refusal logged: "+tc.reason, func() bool {
				return strings.Contains(a.logs.String(), tc.reason)
			})
		})
	}
	pub := testmedia.Publish(t, ctx, src, a.rtmp(sign("publish", "live/sec")))
	var sr streamsResp
	testmedia.Eventually(t, 10*time.Second, "signed publisher live", func() bool {
		getJSON(t, a.api("/v1/streams"), &sr)
		return len(sr.Streams) == 1
	})
	if _, err := testmedia.Read(ctx, a.flv("live/sec"), 2*time.Second); err == nil {
		t.Errorf("HTTP-FLV play without a token succeeded")
	}
	_, query, _ := strings.Cut(sign("play", "live/sec"), "?")
	res, err := testmedia.Read(ctx, a.flv("live/sec")+"?"+query, 2*time.Second)
	if err != nil {
		t.Fatalf("signed HTTP-FLV play: %v", err)
	}
	if res.VideoFrames == 0 || res.DecodeErrors != "" {
		t.Errorf("signed play got %d frames, errors %q", res.VideoFrames, res.DecodeErrors)
	}
	pub.Wait(10 * time.Second)
}

// TestAllowlist: a play allowlist that excludes loopback refuses the
// player (HTTP 403 and a logged reason) while publishing stays open.
func TestAllowlist(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "[auth]\nplay_allow = [\"10.0.0.0/8\"]\n")
	pub := testmedia.Publish(t, context.Background(), testmedia.Source{Realtime: true, Duration: 4 * time.Second}, a.rtmp("live/acl"))
	var sr streamsResp
	testmedia.Eventually(t, 10*time.Second, "publisher live", func() bool {
		getJSON(t, a.api("/v1/streams"), &sr)
		return len(sr.Streams) == 1
	})
	resp, err := http.Get(a.flv("live/acl"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("play from 127.0.0.1 with play_allow 10.0.0.0/8: status %d, want 403", resp.StatusCode)
	}
	testmedia.Eventually(t, 5*time.Second, "refusal logged", func() bool {
		return strings.Contains(a.logs.String(), "is not in auth.play_allow")
	})
	pub.Wait(10 * time.Second)
}
