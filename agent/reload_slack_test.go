package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestReloadWriteCoalesceSlack: a player already attached keeps playing
// without a skip after limits.write_coalesce is reloaded from 0s to 1s. A
// player (ffmpeg over RTMP) that gets packets once per 1 s window is up to
// a second behind when a keyframe comes (every 0.5 s here); the hub's
// lanes keep 64 KiB before the newest GOP (about 8 s of this 64 kbit/s
// stream) and no time bound, so it reads what it had not read yet. (With
// a 300 ms time bound on that slack, as one build had, the player was
// dropped within 4 s.) It plays 8 s of media without a skip (the skips
// counter in /metrics).
func TestReloadWriteCoalesceSlack(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	const key = "live/slack"
	limits := func(w string) string { return fmt.Sprintf("write_coalesce = %q\n", w) }
	a, env := smallStream(t, key, limits("0s"))

	a.writeConfig(t, limits("1s"))
	if ok, errOut := reloadCmd(t, env); !ok {
		t.Fatalf("reload refused: %s", errOut)
	}
	startCmd(t, "", "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", a.rtmp(key), "-f", "null", "-")
	poll.Until(t, 20*time.Second, "the player's first bytes", func() bool {
		return streamCounter(a, "relaymesh_stream_sent_bytes_total", key) > 0
	})
	// 8 s of media at 64 kbit/s after the first bytes: 16 keyframes
	base := streamCounter(a, "relaymesh_stream_sent_bytes_total", key)
	poll.Until(t, 60*time.Second, "8 s of media sent to the player, or a skip", func() bool {
		return streamCounter(a, "relaymesh_stream_sent_bytes_total", key) >= base+64_000 ||
			streamCounter(a, "relaymesh_stream_reader_skips_total", key) > 0
	})
	if s := streamCounter(a, "relaymesh_stream_reader_skips_total", key); s != 0 {
		t.Fatalf("reader skips = %v over 8 s after a reload to write_coalesce = 1s, want 0: the hub's slack before the GOP did not follow the window", s)
	}
}
