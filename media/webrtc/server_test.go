package webrtc_test

import (
	"bytes"
	"context"
	"crypto/rand"
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

	pwebrtc "github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/testnode"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// node is a hub with RTMP and HTTP-FLV listeners and the WebRTC server
// routed on the HTTP listener, as the agent wires it.
func node(t *testing.T, cfg webrtc.Config) (*testnode.Node, *webrtc.Server) {
	t.Helper()
	wn := nodeWithLog(t, cfg)
	return wn.Node, wn.s
}

// webrtcNode is node's result with the WebRTC server's log.
type webrtcNode struct {
	*testnode.Node
	s   *webrtc.Server
	log *testmedia.LogBuffer
}

func nodeWithLog(t *testing.T, cfg webrtc.Config) *webrtcNode {
	t.Helper()
	n := testnode.Start(t, testnode.Config{Name: "server", Hub: media.DefaultHubConfig()})
	log, buf := testmedia.Logger(t, "webrtc")
	cfg.UDPListen = "127.0.0.1:0"
	cfg.Hosts = []string{"127.0.0.1"}
	if cfg.PlayWait == 0 {
		cfg.PlayWait = 10 * time.Second
	}
	s, err := webrtc.New(cfg, n.Hub, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n.FLV.SetConfig(httpflv.Config{PlayWait: 10 * time.Second, Next: s})
	return &webrtcNode{Node: n, s: s, log: buf}
}

// TestWHEPPlaysRTMP: a pion WHEP player reads an RTMP-published H.264
// stream with AAC; the H.264 it receives, written as a file, decodes,
// and so does the Opus the AAC was transcoded to; 5000 junk and STUN
// datagrams sprayed at the ICE port meanwhile do not disturb it.
func TestWHEPPlaysRTMP(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n, s := node(t, webrtc.Config{})
	ctx := t.Context()
	key := "live/whep"
	testmedia.Publish(t, ctx, testmedia.Source{Realtime: true, Duration: 30 * time.Second, Audio: true, GOP: 25}, n.RTMPURL(key))
	testmedia.Eventually(t, 15*time.Second, "stream live", func() bool { return n.Hub.Stream(key) != nil })

	pc := webrtcpeer.New(t)
	if _, err := pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeAudio, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	aout := filepath.Join(t.TempDir(), "whep.ogg")
	ow, err := oggwriter.New(aout, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	const wantAudio = 100 // Opus packets (20 ms each)
	gotAudio := make(chan struct{})
	out := filepath.Join(t.TempDir(), "whep.h264")
	w, err := h264writer.New(out)
	if err != nil {
		t.Fatal(err)
	}
	const want = 60 // frames (timestamps) to receive
	var frames atomic.Int32
	got := make(chan struct{})
	pc.OnTrack(func(tr *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		if tr.Kind() == pwebrtc.RTPCodecTypeAudio {
			for n := 0; ; n++ {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				if n == wantAudio {
					ow.Close()
					close(gotAudio)
					return
				}
				ow.WriteRTP(p)
			}
		}
		var last uint32
		first := true
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if first || p.Timestamp != last {
				if frames.Add(1) > want {
					w.Close()
					close(got)
					return
				}
				first, last = false, p.Timestamp
			}
			w.WriteRTP(p)
		}
	})
	loc := webrtcpeer.Connect(t, pc, n.FLVBase()+"/"+key+"/whep")
	if !strings.HasPrefix(loc, "/"+key+"/whep/") || len(loc) < len(key)+7+32 {
		t.Fatalf("Location %q is not an unguessable session resource", loc)
	}
	testmedia.Eventually(t, 10*time.Second, "webrtc reader listed", func() bool {
		for _, r := range n.Hub.Stream(key).Readers() {
			if r.Protocol == "webrtc" {
				return true
			}
		}
		return false
	})
	flood(t, s.UDPAddr().String())
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		t.Fatalf("received %d of %d frames", frames.Load(), want)
	}
	res, err := testmedia.Analyze(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoCodec != "h264" || res.Width != 640 || res.VideoFrames < want-5 || res.DecodeErrors != "" {
		t.Fatalf("received: %+v", res)
	}
	// the AAC became Opus
	select {
	case <-gotAudio:
	case <-time.After(60 * time.Second):
		t.Fatal("no Opus audio received")
	}
	ares, err := testmedia.Analyze(ctx, aout)
	if err != nil {
		t.Fatal(err)
	}
	if ares.AudioCodec != "opus" || ares.AudioFrames < wantAudio-5 || ares.DecodeErrors != "" {
		t.Fatalf("received audio: %+v", ares)
	}
	if st, body := webrtcpeer.Do(t, http.MethodDelete, n.FLVBase()+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
	// DELETE returns once the session's ffmpeg child is killed and reaped
	if kids := children(t, "libopus"); len(kids) != 0 {
		t.Fatalf("AAC->Opus ffmpeg outlived its session: %q", kids)
	}
	testmedia.Eventually(t, 10*time.Second, "session gone after DELETE", func() bool { return s.SessionCount() == 0 })
	if st, _ := webrtcpeer.Do(t, http.MethodDelete, n.FLVBase()+loc, "", ""); st != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", st)
	}
}

// children returns the command lines of this process's children that
// contain arg, zombies (killed, not yet waited for) included.
func children(t *testing.T, arg string) []string {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if f[0] == "Z" { // no cmdline left: match its comm
			if bytes.Contains(stat, []byte("(ffmpeg)")) {
				out = append(out, "ffmpeg (zombie: killed, not waited for)")
			}
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if c := strings.ReplaceAll(string(cmd), "\x00", " "); strings.Contains(c, arg) {
			out = append(out, c)
		}
	}
	return out
}

// h264File makes an Annex B H.264 file with ffmpeg (lavfi), one slice
// per frame, a keyframe every second.
func h264File(t *testing.T, seconds int) string {
	t.Helper()
	return webrtcpeer.H264File(t, seconds, 25)
}

// publishFile sends an Annex B file as access units at 25 fps until ctx ends
// or the file does.
func publishFile(ctx context.Context, t *testing.T, track *pwebrtc.TrackLocalStaticSample, path string) {
	webrtcpeer.AccessUnits(ctx, t, path, func(au []byte) error {
		return track.WriteSample(pmedia.Sample{Data: bytes.Clone(au), Duration: 40 * time.Millisecond})
	})
}

// opusFile makes an Ogg Opus file with ffmpeg (lavfi sine), one 20 ms
// packet per page.
func opusFile(t *testing.T, seconds int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "src.ogg")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=48000:duration="+strconv.Itoa(seconds), "-ac", "2", "-c:a", "libopus",
		"-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// publishOpus sends an Ogg Opus file's packets at real time.
func publishOpus(ctx context.Context, t *testing.T, track *pwebrtc.TrackLocalStaticSample, path string) {
	opusPackets(ctx, t, path, func(p []byte) error {
		return track.WriteSample(pmedia.Sample{Data: p, Duration: 20 * time.Millisecond})
	})
}

// opusPackets calls send with each packet of an Ogg Opus file (one per
// page, 20 ms each) at real time, until ctx ends, the file does or send
// fails.
func opusPackets(ctx context.Context, t *testing.T, path string, send func(p []byte) error) {
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	ogg, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Error(err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		page, hdr, err := ogg.ParseNextPage()
		if err != nil {
			return
		}
		if _, ok := hdr.HeaderType(page); ok || len(page) == 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if send(page) != nil {
			return
		}
	}
}

// TestWHIPPublishes: a pion WHIP client publishes H.264 and Opus made by
// ffmpeg; ffmpeg reads it back over RTMP and HTTP-FLV, the Opus as AAC.
func TestWHIPPublishes(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n, s := node(t, webrtc.Config{})
	ctx := t.Context()
	key := "live/whip"
	src := h264File(t, 20)
	pc := webrtcpeer.New(t)
	track, err := pwebrtc.NewTrackLocalStaticSample(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(track, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	atrack, err := pwebrtc.NewTrackLocalStaticSample(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(atrack, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	asrc := opusFile(t, 20)
	loc := webrtcpeer.Connect(t, pc, n.FLVBase()+"/"+key+"/whip")
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go publishFile(pctx, t, track, src)
	go publishOpus(pctx, t, atrack, asrc)
	testmedia.Eventually(t, 15*time.Second, "stream has H264 and AAC", func() bool {
		st := n.Hub.Stream(key)
		return st != nil && st.Codecs().Video == "H264" && st.Codecs().Audio == "AAC"
	})
	if p, ok := n.Hub.Stream(key).Publisher(); !ok || p.Protocol != "whip" {
		t.Fatalf("publisher %+v", p)
	}
	for _, url := range []string{n.RTMPURL(key), n.FLVURL(key)} {
		res, err := testmedia.Read(ctx, url, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.Width != 320 || res.Height != 240 || res.VideoFrames < 50 || !res.FirstKey || res.DecodeErrors != "" || res.NonMonotonic != 0 ||
			res.AudioCodec != "aac" || res.AudioFrames < 100 {
			t.Fatalf("%s: %+v", url, res)
		}
	}
	if kids := children(t, "-f adts"); len(kids) != 1 {
		t.Fatalf("Opus->AAC ffmpeg children while publishing: %q, want 1", kids)
	}
	if st, body := webrtcpeer.Do(t, http.MethodDelete, n.FLVBase()+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
	if kids := children(t, "-f adts"); len(kids) != 0 {
		t.Fatalf("Opus->AAC ffmpeg outlived its session: %q", kids)
	}
	testmedia.Eventually(t, 10*time.Second, "session gone after DELETE", func() bool { return s.SessionCount() == 0 })
}

// TestWHIPExtraTracks: a WHIP offer with two H264 and two Opus tracks
// publishes one of each: the stream reads back clean over RTMP and one
// ffmpeg child transcodes its audio.
func TestWHIPExtraTracks(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n, _ := node(t, webrtc.Config{})
	ctx := t.Context()
	key := "live/whip2"
	src, asrc := h264File(t, 20), opusFile(t, 20)
	pc := webrtcpeer.New(t)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var start []func()
	for i := range 2 {
		id := strconv.Itoa(i)
		track, err := pwebrtc.NewTrackLocalStaticSample(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264}, "video"+id, "test"+id)
		if err != nil {
			t.Fatal(err)
		}
		atrack, err := pwebrtc.NewTrackLocalStaticSample(pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio"+id, "test"+id)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range []pwebrtc.TrackLocal{track, atrack} {
			if _, err := pc.AddTransceiverFromTrack(tr, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
		}
		start = append(start, func() { go publishFile(pctx, t, track, src); go publishOpus(pctx, t, atrack, asrc) })
	}
	webrtcpeer.Connect(t, pc, n.FLVBase()+"/"+key+"/whip")
	for _, f := range start {
		f()
	}
	testmedia.Eventually(t, 15*time.Second, "stream has H264 and AAC", func() bool {
		st := n.Hub.Stream(key)
		return st != nil && st.Codecs().Video == "H264" && st.Codecs().Audio == "AAC"
	})
	res, err := testmedia.Read(ctx, n.RTMPURL(key), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoCodec != "h264" || res.Width != 320 || res.VideoFrames < 50 || !res.FirstKey || res.DecodeErrors != "" || res.NonMonotonic != 0 ||
		res.AudioCodec != "aac" || res.AudioFrames < 100 {
		t.Fatalf("RTMP: %+v", res)
	}
	if kids := children(t, "-f adts"); len(kids) != 1 {
		t.Fatalf("Opus->AAC ffmpeg children: %q, want 1", kids)
	}
}

// vp8Only is a player whose offer has no codec relaymesh carries.
func vp8Only(t *testing.T) string {
	t.Helper()
	me := &pwebrtc.MediaEngine{}
	if err := me.RegisterCodec(pwebrtc.RTPCodecParameters{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, pwebrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	pc, err := pwebrtc.NewAPI(pwebrtc.WithMediaEngine(me)).NewPeerConnection(pwebrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

// TestBadInput: each bad request is refused with a reason and costs only
// its own session; a flood of offers that never connect is bounded by
// max sessions and the connect timeout.
func TestBadInput(t *testing.T) {
	n, s := node(t, webrtc.Config{MaxSessions: 2, ConnectTimeout: 2 * time.Second})
	base := n.FLVBase()
	// a live stream for the WHEP cases
	pub, err := n.Hub.Publish("live/bad", media.PublisherInfo{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pc := webrtcpeer.New(t)
	pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeVideo, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly})
	good := webrtcpeer.Offer(t, pc)

	for _, tc := range []struct {
		name, url, ctype, body string
		status                 int
		says                   string
	}{
		{"malformed SDP", "/live/bad/whep", "application/sdp", "v=0\r\nthis is not sdp\r\n", 400, "malformed SDP"},
		{"no supported codec", "/live/bad/whep", "application/sdp", vp8Only(t), 400, "no H264 or H265"},
		{"whip without H264", "/live/new/whip", "application/sdp", vp8Only(t), 400, "no H264 video"},
		{"wrong content type", "/live/bad/whep", "text/plain", good, 415, "application/sdp"},
		{"oversized offer", "/live/bad/whep", "application/sdp", strings.Repeat("a=x\r\n", 20000), 413, "larger than"},
		{"GET", "/live/bad/whep", "", "", 405, "POST"},
		{"unknown session", "/live/bad/whep/0123456789abcdef0123456789abcdef", "application/trickle-ice-sdpfrag", "", 404, "no such session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			switch tc.name {
			case "GET":
				method = http.MethodGet
			case "unknown session":
				method = http.MethodPatch
			}
			st, body := webrtcpeer.Do(t, method, base+tc.url, tc.ctype, tc.body)
			if st != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %q, want %d with %q", st, body, tc.status, tc.says)
			}
		})
	}

	t.Run("endless PATCH", func(t *testing.T) {
		st, _, loc := webrtcpeer.Post(t, base+"/live/bad/whep", good)
		if st != http.StatusCreated {
			t.Fatalf("POST: %d", st)
		}
		frag := "a=ice-ufrag:" + iceUfrag(good) + "\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
		if st, body := webrtcpeer.Do(t, http.MethodPatch, base+loc, "application/trickle-ice-sdpfrag", strings.Repeat("a=x\r\n", 5000)); st != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than") {
			t.Fatalf("oversized fragment: %d %q", st, body)
		}
		var last int
		for range 80 {
			if last, _ = webrtcpeer.Do(t, http.MethodPatch, base+loc, "application/trickle-ice-sdpfrag", frag); last == http.StatusTooManyRequests {
				break
			}
			if last != http.StatusNoContent {
				t.Fatalf("PATCH: %d", last)
			}
		}
		if last != http.StatusTooManyRequests {
			t.Fatalf("80 PATCHes all accepted")
		}
		if st, _ := webrtcpeer.Do(t, http.MethodPatch, base+loc, "application/trickle-ice-sdpfrag", "a=ice-ufrag:other\r\n"); st != http.StatusTooManyRequests {
			t.Fatalf("PATCH after the limit: %d", st)
		}
		if st, _ := webrtcpeer.Do(t, http.MethodDelete, base+loc, "", ""); st != http.StatusOK {
			t.Fatalf("DELETE: %d", st)
		}
	})

	t.Run("session flood", func(t *testing.T) {
		testmedia.Eventually(t, 10*time.Second, "no sessions", func() bool { return s.SessionCount() == 0 })
		for i := range 2 {
			if st, body, _ := webrtcpeer.Post(t, base+"/live/bad/whep", good); st != http.StatusCreated {
				t.Fatalf("offer %d: %d %s", i, st, body)
			}
		}
		st, body, _ := webrtcpeer.Post(t, base+"/live/bad/whep", good)
		if st != http.StatusServiceUnavailable || !strings.Contains(body, "too many WebRTC sessions") {
			t.Fatalf("third offer: %d %s", st, body)
		}
		// offers that never connect are dropped after the connect timeout
		testmedia.Eventually(t, 20*time.Second, "unconnected sessions dropped", func() bool { return s.SessionCount() == 0 })
		if st, body, _ := webrtcpeer.Post(t, base+"/live/bad/whep", good); st != http.StatusCreated {
			t.Fatalf("offer after the flood: %d %s", st, body)
		}
	})
}

func iceUfrag(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// flood sprays the ICE port with junk and with STUN binding requests for
// sessions that do not exist, as a scan or an ICE flood would.
func flood(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	junk := make([]byte, 200)
	for i := range 5000 {
		rand.Read(junk)
		if i%2 == 0 { // STUN header: binding request, magic cookie
			junk[0], junk[1], junk[2], junk[3] = 0, 1, 0, 0
			junk[4], junk[5], junk[6], junk[7] = 0x21, 0x12, 0xa4, 0x42
		}
		c.Write(junk)
	}
}
