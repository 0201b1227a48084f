package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
)

// TestWHEPThroughAgent runs the real binary with [webrtc] on and signed
// play URLs: a WHEP offer without a token is refused, one with the token
// as a bearer token plays the RTMP-published stream, the reader shows in
// /v1/streams and /metrics, max_sessions refuses a second session, and
// a reload of max_sessions and connect_timeout applies to the next one;
// the bytes sent to the player count in the stream's sent bytes.
func TestWHEPThroughAgent(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	keyFile := signingKey(t)
	udp := testmedia.FreePort(t)
	a := startAgent(t, fmt.Sprintf("[auth]\nplay = true\nkey_file = %q\n[webrtc]\nenabled = true\nudp_listen = \"127.0.0.1:%d\"\nadditional_hosts = [\"127.0.0.1\"]\nmax_sessions = 1\nconnect_timeout = \"10m\"\n", keyFile, udp))
	key := "live/rtc"
	testmedia.Publish(t, context.Background(), testmedia.Source{Realtime: true, Duration: 30 * time.Second, GOP: 25}, a.rtmp(key))
	waitStreams(t, a, "stream live", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].Video == "H264" })

	whep := fmt.Sprintf("http://127.0.0.1:%d/%s/whep", a.ports["http"], key)
	pc := webrtcpeer.New(t)
	pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	if st, body, _ := webrtcpeer.Post(t, whep, webrtcpeer.Offer(t, pc)); st != http.StatusUnauthorized || !strings.Contains(body, "a signed URL is required") {
		t.Fatalf("offer without a token: %d %s", st, body)
	}
	out, err := exec.Command(binary(t), "sign", "--key", keyFile, "--action", "play", "--ttl", "10m", key).Output()
	if err != nil {
		t.Fatalf("relaymesh sign: %v", err)
	}
	_, token, _ := strings.Cut(strings.TrimSpace(string(out)), "token=")

	pc = webrtcpeer.New(t)
	pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	frames := videoFrames(pc)
	loc := webrtcpeer.Connect(t, pc, whep, "Authorization", "Bearer "+token)
	testmedia.Eventually(t, 20*time.Second, "25 frames over WHEP", func() bool { return frames.Load() >= 25 })
	waitStreams(t, a, "webrtc reader counted", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1 })
	testmedia.Eventually(t, 10*time.Second, "reader in /metrics", func() bool {
		_, m := webrtcpeer.Do(t, http.MethodGet, a.api("/metrics"), "", "")
		return strings.Contains(m, `relaymesh_stream_readers{stream="live/rtc"} 1`)
	})
	// what the WHEP player is sent counts in the stream's sent bytes
	// (RTP payload bytes; the package's TestWHEPCountsSentBytes compares
	// them with what a player received)
	testmedia.Eventually(t, 10*time.Second, "WHEP bytes in relaymesh_stream_sent_bytes_total", func() bool {
		mfs, err := promtest.TryScrape(a.api("/metrics"))
		if err != nil {
			return false
		}
		v, _ := promtest.Value(mfs, "relaymesh_stream_sent_bytes_total", map[string]string{"stream": key})
		return v > 10_000
	})

	pc2 := webrtcpeer.New(t)
	pc2.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	if st, body, _ := webrtcpeer.Post(t, whep+"?token="+token, webrtcpeer.Offer(t, pc2)); st != http.StatusServiceUnavailable || !strings.Contains(body, "limit 1") {
		t.Fatalf("second session over webrtc.max_sessions = 1: %d %s", st, body)
	}
	// both keys apply on reload: the second offer is taken, and as it
	// never connects it is dropped after the new 1 s, not the old 10 min
	editConfig(t, a, "max_sessions = 1\nconnect_timeout = \"10m\"", "max_sessions = 2\nconnect_timeout = \"1s\"")
	if res := reloadAndWait(t, a); res != "reloaded" {
		t.Fatalf("reload: %s", res)
	}
	pc3 := webrtcpeer.New(t)
	pc3.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	if st, body, _ := webrtcpeer.Post(t, whep+"?token="+token, webrtcpeer.Offer(t, pc3)); st != http.StatusCreated {
		t.Fatalf("second session after reloading webrtc.max_sessions = 2: %d %s", st, body)
	}
	testmedia.Eventually(t, 30*time.Second, "unconnected session dropped after the reloaded connect_timeout", func() bool {
		return strings.Contains(a.logs.String(), `"reason":"not connected within 1s"`)
	})
	waitStreams(t, a, "only the connected reader left", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1 })
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	if st, body := webrtcpeer.Do(t, http.MethodDelete, base+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
	waitStreams(t, a, "reader gone after DELETE", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 0 })
}

// videoFrames counts the frames (RTP timestamps) of the tracks pc
// receives.
func videoFrames(pc *pwebrtc.PeerConnection) *atomic.Int32 {
	var frames atomic.Int32
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		var last uint32
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if p.Timestamp != last {
				frames.Add(1)
				last = p.Timestamp
			}
		}
	})
	return &frames
}

// TestWebRTCOnByDefault: with no `enabled` in [webrtc] the binary serves
// WHEP, and a udp_listen with port 0 (loopback, as every test agent runs,
// and ":0" on every interface) binds a port the kernel picks, which the
// started log names and the answer's candidates advertise: a pion peer
// connects through it and receives the RTMP-published video.
func TestWebRTCOnByDefault(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	for _, tc := range []struct{ name, extra string }{
		{"loopback port 0", ""}, // testagent.ephemeralWebRTC
		{"any address port 0", "[webrtc]\nudp_listen = \":0\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startAgent(t, tc.extra)
			var port string
			testmedia.Eventually(t, 10*time.Second, "started log with webrtc_udp", func() bool {
				for _, l := range testmedia.Lines(a.logs.String()) {
					var m struct {
						Msg       string
						WebRTCUDP string `json:"webrtc_udp"`
					}
					if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "relaymesh started" && m.WebRTCUDP != "" {
						_, port, _ = net.SplitHostPort(m.WebRTCUDP)
						return true
					}
				}
				return false
			})
			if port == "" || port == "0" {
				t.Fatalf("started log names webrtc_udp port %q, want the bound one", port)
			}
			key := "live/rtcdefault"
			testmedia.Publish(t, context.Background(), testmedia.Source{Realtime: true, Duration: 30 * time.Second, GOP: 25}, a.rtmp(key))
			waitStreams(t, a, "stream live", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].Video == "H264" })
			pc := webrtcpeer.New(t)
			pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
			frames := videoFrames(pc)
			webrtcpeer.Connect(t, pc, fmt.Sprintf("http://127.0.0.1:%d/%s/whep", a.ports["http"], key))
			cands := 0
			for _, l := range testmedia.Lines(pc.RemoteDescription().SDP) {
				if !strings.HasPrefix(l, "a=candidate:") {
					continue
				}
				cands++
				// foundation component transport priority address port typ ...
				if f := strings.Fields(l); len(f) < 6 || f[5] != port {
					t.Errorf("answer's candidate %q does not advertise the bound port %s", l, port)
				}
			}
			if cands == 0 {
				t.Fatalf("answer has no candidates:\n%s", pc.RemoteDescription().SDP)
			}
			testmedia.Eventually(t, 20*time.Second, "25 frames over WHEP", func() bool { return frames.Load() >= 25 })
		})
	}
}

// TestWHEPH265: an H.265 stream published over SRT plays over WHEP to a
// player that offers H.265 (pion's default codecs do; Chromium here lists
// no H.265 receive codec, so this is a pion player): the track is
// video/H265, and its RTP, depacketized to Annex B, is HEVC that ffmpeg
// decodes without errors.
func TestWHEPH265(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	src := testmedia.Source{Realtime: true, GOP: 25, Codec: "libx265", Duration: 30 * time.Second}
	pub := testmedia.Publish(t, context.Background(), src, fmt.Sprintf("srt://127.0.0.1:%d?streamid=publish:live/hevc", a.ports["srt"]))
	defer pub.Cmd.Process.Kill()
	waitStreams(t, a, "H.265 publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].Video == "H265" })

	out := filepath.Join(t.TempDir(), "whep.h265")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	pc := webrtcpeer.New(t)
	pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	const want = 75 // frames (RTP timestamps)
	mime := make(chan string, 1)
	got := make(chan struct{})
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		mime <- tr.Codec().MimeType
		var d codecs.H265Depacketizer
		var last uint32
		frames := 0
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if frames == 0 || p.Timestamp != last {
				if frames++; frames > want {
					f.Close()
					close(got)
					return
				}
				last = p.Timestamp
			}
			if au, err := d.Unmarshal(p.Payload); err == nil {
				f.Write(au)
			}
		}
	})
	webrtcpeer.Connect(t, pc, fmt.Sprintf("http://127.0.0.1:%d/live/hevc/whep", a.ports["http"]))
	if m := <-mime; !strings.EqualFold(m, pwebrtc.MimeTypeH265) {
		t.Fatalf("track codec %s, want %s", m, pwebrtc.MimeTypeH265)
	}
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatalf("fewer than %d H.265 frames over WHEP in 60 s", want)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	codec, n, _ := strings.Cut(strings.TrimSpace(string(probe)), ",")
	frames, _ := strconv.Atoi(n)
	dec, _ := exec.Command("ffmpeg", "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput()
	// the frames before the first keyframe may be lost: at least 2 s of 3
	if codec != "hevc" || frames < 50 || len(dec) != 0 {
		t.Errorf("H.265 received over WHEP: codec %q, %d frames, decode errors %q", codec, frames, dec)
	}
	t.Logf("H.265 over WHEP: %s, %d frames decoded", codec, frames)
}
