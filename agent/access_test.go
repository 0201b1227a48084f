package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestSignedSRTStreamIDs: the signed URLs of [auth] hold on the SRT
// listener as on RTMP, through the one access request every listener
// puts to the node: ffmpeg publishing and reading with the token in the
// streamid is admitted only with a token signed for that action and
// stream; each refusal is logged with its reason.
func TestSignedSRTStreamIDs(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	keyFile := signingKey(t)
	a := startAgent(t, fmt.Sprintf("[auth]\npublish = true\nplay = true\nkey_file = %q\n", keyFile))
	port := a.ports["srt"]
	sign := func(action, key string) string {
		out, err := exec.Command(binary(t), "sign", "--key", keyFile, "--action", action, "--ttl", "10m", key).Output()
		if err != nil {
			t.Fatalf("relaymesh sign: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	refused := []struct{ name, streamID, reason string }{
		{"publish without a token", "publish:live/ssec", "a signed URL is required"},
		{"publish with a play token", "publish:" + sign("play", "live/ssec"), "the signature does not match"},
		{"publish with another stream's token", "publish:live/ssec?" + strings.SplitN(sign("publish", "live/other"), "?", 2)[1], "the signature does not match"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			seen := strings.Count(a.logs.String(), c.reason)
			out, err := exec.Command("ffmpeg", append(ffmpegTS(1), srtURL(port, c.streamID, "", 0, ""))...).CombinedOutput()
			if err == nil {
				t.Fatalf("ffmpeg published: %s", out)
			}
			testmedia.Eventually(t, 5*time.Second, "refusal logged: "+c.reason, func() bool {
				return strings.Count(a.logs.String(), c.reason) > seen
			})
		})
	}
	startCmd(t, "", "ffmpeg", append(ffmpegTS(30), srtURL(port, "publish:"+sign("publish", "live/ssec"), "", 0, ""))...)
	waitVideo(t, a, "live/ssec")

	read := func(streamID string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", srtURL(port, streamID, "", 0, ""),
			"-t", "1", "-f", "null", "-").CombinedOutput()
		return string(out), err
	}
	if out, err := read("read:live/ssec"); err == nil {
		t.Errorf("a read without a token got the stream: %s", out)
	}
	if out, err := read("read:" + sign("play", "live/ssec")); err != nil {
		t.Errorf("a read with a play token: %v: %s", err, out)
	}
	// the same request on HTTP-FLV: a play token admits, two are malformed
	_, query, _ := strings.Cut(sign("play", "live/ssec"), "?")
	if res, err := testmedia.Read(context.Background(), a.flv("live/ssec")+"?"+query, 2*time.Second); err != nil || res.VideoFrames == 0 {
		t.Errorf("HTTP-FLV play with a play token: %v, %+v", err, res)
	}
	resp, err := http.Get(a.flv("live/ssec") + "?" + query + "&" + query)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "appears more than once") {
		t.Errorf("two tokens: %d %q, want 403 saying the token appears more than once", resp.StatusCode, body)
	}
}
