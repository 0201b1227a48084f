package srt

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

func dial(t *testing.T, ts *testServer, streamID, pass string) (*libsrt.Conn, error) {
	t.Helper()
	conn, err := libsrt.Dial(t.Context(), ts.url[len("srt://"):], libsrt.Options{StreamID: streamID, Passphrase: pass, ConnectTimeout: 3 * time.Second})
	if err == nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, err
}

func TestRefusals(t *testing.T) {
	ts := startServer(t, Config{MaxConns: 2, Streams: map[string]StreamOptions{"live/secret": {PublishPassphrase: pass32}}}, hubCfg())
	cases := []struct {
		name, streamID, pass string
		logWant              string
	}{
		{"malformed streamid", "bogus:x", "", "unknown action"},
		{"unknown stream", "read:live/none", "", "no such stream"},
		{"passphrase missing", "publish:live/secret", "", "needs a passphrase"},
		{"wrong passphrase", "publish:live/secret", "wrong-passphrase-123", "wrong passphrase"},
		{"unexpected passphrase", "publish:live/open", pass32, "not encrypted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := dial(t, ts, c.streamID, c.pass); err == nil {
				t.Fatal("connection accepted")
			}
			waitFor(t, 5*time.Second, "the refusal in the log", func() bool {
				return strings.Contains(ts.logs.String(), c.logWant)
			})
		})
	}
	t.Run("too many connections", func(t *testing.T) {
		for i, id := range []string{"publish:live/a", "publish:live/b"} {
			if _, err := dial(t, ts, id, ""); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		if _, err := dial(t, ts, "publish:live/c", ""); err == nil {
			t.Fatal("third connection accepted with max_connections 2")
		}
		waitFor(t, 5*time.Second, "the refusal in the log", func() bool {
			return strings.Contains(ts.logs.String(), "too many SRT connections")
		})
	})
}

func TestFFmpegSeesRefusal(t *testing.T) {
	needTools(t, "ffmpeg")
	ts := startServer(t, Config{PublishPassphrase: pass32}, hubCfg())
	cases := []struct{ name, query, logWant string }{
		{"malformed streamid", "?streamid=bogus:x", "unknown action"},
		{"wrong passphrase", "?streamid=publish:live/x&passphrase=not-the-passphrase", "wrong passphrase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCmd("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x36:rate=5",
				"-t", "1", "-c:v", "libx264", "-f", "mpegts", ts.url+c.query)
			if err == nil {
				t.Fatal("ffmpeg published anyway")
			}
			t.Logf("ffmpeg says: %s", out)
			if !strings.Contains(strings.ToLower(out), "reject") && !strings.Contains(out, "Connection setup failure") {
				t.Errorf("ffmpeg output does not say the connection was refused: %s", out)
			}
			if !strings.Contains(ts.logs.String(), c.logWant) {
				t.Errorf("server log lacks %q", c.logWant)
			}
		})
	}
}

func TestGarbageClosesOnlyThatConnection(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	ts := startServer(t, Config{}, hubCfg())
	pub := start(t, "", "ffmpeg", publishArgs(ts.url+"?streamid=publish:live/good", "", "h264", 12)...)
	waitFor(t, 15*time.Second, "the good stream", func() bool {
		s := ts.hub.Stream("live/good")
		return s != nil && s.Codecs().Video != ""
	})
	cases := []struct {
		name string
		data func() []byte
	}{
		{"random bytes", func() []byte {
			b := make([]byte, 1316)
			for i := range b {
				b[i] = byte(rand.Uint32())
			}
			return b
		}},
		{"http text", func() []byte { return []byte(strings.Repeat("GET / HTTP/1.1\r\n", 82)) }},
		{"ts without PAT", func() []byte {
			b := make([]byte, 1316)
			for i := 0; i < len(b); i += 188 {
				b[i], b[i+1], b[i+2], b[i+3] = 0x47, 0x01, 0x00, 0x10
			}
			return b
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "live/bad" + string(rune('a'+i))
			conn, err := dial(t, ts, "publish:"+key, "")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow() // stop this case's flood before the next one
			closed := false
			for n := 0; n < 5000 && !closed; n++ {
				if _, err := conn.Write(c.data()); err != nil {
					closed = true
				}
				if n%50 == 49 {
					time.Sleep(5 * time.Millisecond)
					closed = closed || ts.hub.Stream(key) == nil
				}
			}
			waitFor(t, 10*time.Second, "the bad publisher to be dropped", func() bool {
				return ts.hub.Stream(key) == nil && strings.Contains(ts.logs.String(), "bad input")
			})
			if s := ts.hub.Stream("live/good"); s == nil {
				t.Fatal("the good stream ended too")
			}
		})
	}
	// the good stream still flows
	s := ts.hub.Stream("live/good")
	if s == nil {
		t.Fatal("good stream gone")
	}
	r, err := ts.hub.Subscribe(t.Context(), "live/good", subscribeFLV())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	frames := 0
	buf := make([]*mediaPacket, 0, 64)
	deadline := time.Now().Add(5 * time.Second)
	for frames < 25 && time.Now().Before(deadline) {
		pkts, err := r.Next(t.Context(), buf)
		if err != nil {
			break
		}
		for _, p := range pkts {
			if !p.Header && p.Kind == 9 {
				frames++
			}
		}
	}
	if frames < 25 {
		t.Errorf("good stream delivered %d video frames after the bad ones", frames)
	}
	_ = pub
}
