package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

const (
	srcPass = "source-pass-0123456789"
	outPass = "output-pass-0123456789"
)

// srtURL is an SRT URL of the agent's listener for streamid with extra
// query options (passphrase, pbkeylen, latency).
func (p *agentProc) srtURL(streamid string, opts ...string) string {
	q := "streamid=" + streamid // ffmpeg passes it on as written
	for _, o := range opts {
		q += "&" + o
	}
	return fmt.Sprintf("srt://127.0.0.1:%d?%s", p.ports["srt"], q)
}

// publisherOf returns the protocol of key's publisher ("" when none).
func publisherOf(t *testing.T, a *agentProc, key string) string {
	t.Helper()
	var sr streamsResp
	getJSON(t, a.api("/v1/streams"), &sr)
	for _, s := range sr.Streams {
		if s.Name == key && s.Publisher != nil {
			return s.Publisher.Protocol
		}
	}
	return ""
}

// passRefusals counts the agent's log lines refusing an SRT connection
// to key for its passphrase.
func passRefusals(a *agentProc, key string) int {
	n := 0
	for _, l := range testmedia.Lines(a.logs.String()) {
		if strings.Contains(l, "refused") && strings.Contains(l, key) && strings.Contains(strings.ToLower(l), "passphrase") {
			n++
		}
	}
	return n
}

// checkFlowSRTEncryption: the flow's srt-listener source takes only
// publishers with its passphrase, its srt-listener output only readers
// with the output's passphrase; other streams of the listener stay
// unencrypted. pubOpts are added to the URL of the publisher that has the
// passphrase (e.g. its pbkeylen).
func checkFlowSRTEncryption(t *testing.T, a *agentProc, pubOpts ...string) {
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Duration: 30 * time.Second}.Defaults()
	refused := []struct{ name, url string }{
		{"publisher without passphrase", a.srtURL("publish:live/enc")},
		{"publisher with a wrong passphrase", a.srtURL("publish:live/enc", "passphrase=wrong-pass-0123456789")},
		{"publisher with the output's passphrase", a.srtURL("publish:live/enc", "passphrase="+outPass)},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			before := passRefusals(a, "live/enc")
			p := testmedia.Publish(t, ctx, src, c.url)
			if err := p.Wait(20 * time.Second); err == nil || strings.Contains(err.Error(), "still running") {
				t.Fatalf("publisher not refused: %v\n%s", err, p.Stderr)
			}
			if proto := publisherOf(t, a, "live/enc"); proto != "" {
				t.Errorf("live/enc has a %s publisher after a refused one", proto)
			}
			testmedia.Eventually(t, 5*time.Second, "the refusal logged for its passphrase", func() bool {
				return passRefusals(a, "live/enc") > before
			})
		})
	}
	t.Run("publisher with the passphrase", func(t *testing.T) {
		p := testmedia.Publish(t, ctx, src, a.srtURL("publish:live/enc", append([]string{"passphrase=" + srcPass}, pubOpts...)...))
		defer p.Cmd.Process.Kill()
		testmedia.Eventually(t, 15*time.Second, "live/enc published over SRT", func() bool {
			return publisherOf(t, a, "live/enc") == "srt"
		})
		if _, err := testmedia.Read(ctx, a.srtURL("read:flow/enc"), 2*time.Second); err == nil {
			t.Errorf("a reader of flow/enc without the output's passphrase got media")
		}
		if _, err := testmedia.Read(ctx, a.srtURL("read:flow/enc", "passphrase="+srcPass), 2*time.Second); err == nil {
			t.Errorf("a reader of flow/enc with the source's passphrase got media")
		}
		res, err := testmedia.Read(ctx, a.srtURL("read:flow/enc", "passphrase="+outPass), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.VideoCodec != "h264" || res.VideoFrames < 25 || res.DecodeErrors != "" {
			t.Errorf("reader with the output's passphrase saw %+v", res)
		}
	})
	t.Run("other streams stay unencrypted", func(t *testing.T) {
		testmedia.Publish(t, ctx, src, a.srtURL("publish:live/plain"))
		testmedia.Eventually(t, 15*time.Second, "live/plain published without a passphrase", func() bool {
			return publisherOf(t, a, "live/plain") == "srt"
		})
	})
}

// TestFlowSRTEncryptionConfig: a [[flow]] declared in the config.
func TestFlowSRTEncryptionConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time SRT publishers")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	a := startAgent(t, fmt.Sprintf(`
[[flow]]
id = "enc"
start = true
[flow.source]
type = "srt-listener"
stream = "live/enc"
passphrase = %q
[[flow.outputs]]
name = "srt"
type = "srt-listener"
passphrase = %q
`, srcPass, outPass))
	checkFlowSRTEncryption(t, a)
}
