package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

func (p *agentProc) hls(key, file string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s/%s", p.ports["http"], key, file)
}

// signPlay returns the query of a play URL for key signed by relaymesh
// sign with keyFile, valid for ttl.
func signPlay(t *testing.T, keyFile, key, ttl string) string {
	t.Helper()
	out, err := exec.Command(binary(t), "sign", "--key", keyFile, "--action", "play", "--ttl", ttl, key).Output()
	if err != nil {
		t.Fatalf("relaymesh sign: %v", err)
	}
	_, q, _ := strings.Cut(strings.TrimSpace(string(out)), "?")
	return q
}

// get returns the status and body of url, bounded by d.
func get(t *testing.T, url string, d time.Duration) (int, string) {
	t.Helper()
	c := http.Client{Timeout: d}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// llState reads an LL-HLS media playlist: the media sequence number of the
// segment being written and how many of its parts are listed.
func llState(t *testing.T, pl string) (next, parts int) {
	t.Helper()
	seq := -1
	for _, l := range testmedia.Lines(pl) {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(l, "#EXTINF:"):
			next++
			parts = 0
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			parts++
		}
	}
	if seq < 0 {
		t.Fatalf("no EXT-X-MEDIA-SEQUENCE in\n%s", pl)
	}
	return seq + next, parts
}

// TestHLS: ffmpeg publishes over RTMP; ffmpeg reads the stream over
// LL-HLS and plain HLS (codecs, frame count, no decode errors); the LL-HLS
// playlist has parts of the configured duration and answers a blocking
// reload when the part appears; hostile playlist requests are refused or
// bounded and cost only themselves; HLS readers are listed in
// /v1/streams while they read (one per address while play tokens are not
// verified) and leave after session_timeout.
func TestHLS(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "[hls]\npart_duration = \"300ms\"\nsession_timeout = \"2s\"\n")
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Duration: 40 * time.Second}
	pub := testmedia.Publish(t, ctx, src, a.rtmp("live/hls"))
	waitStreams(t, a, "publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })

	for _, tc := range []struct{ name, file string }{
		{"LL-HLS", "index.m3u8"},
		{"plain HLS", "plain.m3u8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := testmedia.Read(ctx, a.hls("live/hls", tc.file), 4*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.VideoCodec != "h264" || res.AudioCodec != "aac" || res.Width != 640 {
				t.Errorf("got %s %dx%d + %s, want h264 640x360 + aac", res.VideoCodec, res.Width, res.Height, res.AudioCodec)
			}
			// 4 s at 25 fps
			if res.VideoFrames < 95 || res.VideoFrames > 105 || !res.FirstKey {
				t.Errorf("got %d video frames (first a keyframe: %v), want 100+-5 starting at a keyframe", res.VideoFrames, res.FirstKey)
			}
			if res.DecodeErrors != "" || res.NonMonotonic != 0 {
				t.Errorf("decode errors %q, non-monotonic %d", res.DecodeErrors, res.NonMonotonic)
			}
		})
	}

	t.Run("web page", func(t *testing.T) {
		base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
		testmedia.Eventually(t, 10*time.Second, "GET / lists live/hls with H264, AAC, 640x360 and its fps", func() bool {
			code, page := get(t, base+"/", 10*time.Second)
			return code == 200 && strings.Contains(page, `data-key="live/hls"`) &&
				strings.Contains(page, "<td>H264</td><td>AAC</td><td>640x360</td><td>25.") // 25.x fps
		})
		code, page := get(t, base+"/live/hls/?token=x", 10*time.Second)
		if code != 200 || !strings.Contains(page, `data-src="/live/hls/index.m3u8?token=x"`) {
			t.Errorf("GET /live/hls/ = %d, no player of the stream's LL-HLS playlist (with the page's token):\n%s", code, page)
		}
		if code, js := get(t, base+"/_static/hls.min.js", 10*time.Second); code != 200 || !strings.Contains(js, "Hls") {
			t.Errorf("GET /_static/hls.min.js = %d", code)
		}
	})

	media := a.hls("live/hls", "video1_stream.m3u8")
	t.Run("parts and blocking reload", func(t *testing.T) {
		_, pl := get(t, media, 20*time.Second)
		if !strings.Contains(pl, "CAN-BLOCK-RELOAD=YES") || !strings.Contains(pl, "#EXT-X-PART:") {
			t.Fatalf("LL-HLS playlist without parts or blocking reload:\n%s", pl)
		}
		var target float64
		for _, l := range testmedia.Lines(pl) {
			if v, ok := strings.CutPrefix(l, "#EXT-X-PART-INF:PART-TARGET="); ok {
				target, _ = strconv.ParseFloat(v, 64)
			}
		}
		// part_duration is a minimum; parts end on a frame (40 ms)
		if target < 0.3 || target >= 0.35 {
			t.Errorf("PART-TARGET %g, want part_duration 0.3 s up to the next frame", target)
		}
		next, parts := llState(t, pl)
		// two parts ahead of the last listed one: the request must wait
		want := fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", media, next, parts+1)
		start := time.Now()
		code, body := get(t, want, 20*time.Second)
		took := time.Since(start)
		if code != 200 {
			t.Fatalf("blocking reload %s: %d %s", want, code, body)
		}
		n2, p2 := llState(t, body)
		if n2 == next && p2 <= parts+1 {
			t.Errorf("blocking reload answered before part %d of segment %d: it lists %d parts of it", parts+1, next, p2)
		}
		t.Logf("blocking reload for a part two ahead answered after %s", took)
		// the preload-hinted part is held until it is complete; one beyond
		// it is not a part yet
		var hint string
		for _, l := range testmedia.Lines(body) {
			if _, u, ok := strings.Cut(l, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="`); ok {
				hint = strings.TrimSuffix(u, `"`)
			}
		}
		i := strings.LastIndex(hint, "_part")
		n, err := strconv.Atoi(strings.TrimSuffix(hint[i+5:], ".mp4"))
		if i < 0 || err != nil {
			t.Fatalf("no preload hint in\n%s", body)
		}
		if code, part := get(t, a.hls("live/hls", hint), 20*time.Second); code != 200 || len(part) < 100 {
			t.Errorf("preload-hinted part %s: %d, %d bytes", hint, code, len(part))
		}
		beyond := fmt.Sprintf("%s_part%d.mp4", hint[:i], n+5)
		if code, _ := get(t, a.hls("live/hls", beyond), 20*time.Second); code != 404 {
			t.Errorf("part %s five beyond the hint: %d, want 404", beyond, code)
		}
	})

	t.Run("hostile requests", func(t *testing.T) {
		_, pl := get(t, media, 20*time.Second)
		next, _ := llState(t, pl)
		for _, tc := range []struct {
			name, file string
			status     int
		}{
			{"msn not a number", "video1_stream.m3u8?_HLS_msn=abc", 400},
			{"huge msn", "video1_stream.m3u8?_HLS_msn=18446744073709551615", 400},
			{"msn far ahead", fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d", next+100), 400},
			{"part without msn", "video1_stream.m3u8?_HLS_part=1", 400},
			{"gap segment msn", "video1_stream.m3u8?_HLS_msn=0", 400},
			{"unknown segment", "0123456789ab_video1_seg99999.mp4", 404},
			{"unknown part", "0123456789ab_video1_part99999.mp4", 404},
			{"unknown file", "secret.txt", 404},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if code, body := get(t, a.hls("live/hls", tc.file), 20*time.Second); code != tc.status {
					t.Errorf("%s: %d %q, want %d", tc.file, code, body, tc.status)
				}
			})
		}
		// many blocked reloads at once: each is answered (when its segment
		// comes) or refused, and a plain playlist request is served meanwhile
		var wg sync.WaitGroup
		codes := make(chan int, 300)
		for range 300 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := http.Client{Timeout: 30 * time.Second}
				resp, err := c.Get(fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=0", media, next+1))
				if err != nil {
					codes <- 0
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		if code, _ := get(t, media, 10*time.Second); code != 200 {
			t.Errorf("playlist during 300 blocked reloads: %d", code)
		}
		wg.Wait()
		close(codes)
		seen := map[int]int{}
		for c := range codes {
			seen[c]++
		}
		if seen[200]+seen[503] != 300 {
			t.Errorf("300 blocked reloads answered %v; want 200 (part arrived) or 503 (over the waiting limit) each", seen)
		}
		t.Logf("300 concurrent blocked reloads: %v", seen)
	})

	t.Run("readers", func(t *testing.T) {
		get(t, media, 10*time.Second)
		// without auth.play nothing verifies a token: other tokens from
		// the same address are that reader, not one more each
		for i := range 5 {
			get(t, media+"?token=t"+strconv.Itoa(i), 10*time.Second)
		}
		var sr streamsResp
		getJSON(t, a.api("/v1/streams"), &sr)
		if len(sr.Streams) != 1 || sr.Streams[0].ReaderCount > 1 {
			t.Errorf("after 6 requests with 6 unverified tokens from one address: %+v, want at most 1 reader", sr.Streams)
		}
		waitStreams(t, a, "an HLS reader listed", func(sr streamsResp) bool {
			return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1
		})
		var full struct {
			Streams []struct {
				Readers []struct{ Protocol, Remote string } `json:"readers"`
			} `json:"streams"`
		}
		getJSON(t, a.api("/v1/streams"), &full)
		if len(full.Streams) != 1 || len(full.Streams[0].Readers) != 1 || full.Streams[0].Readers[0].Protocol != "hls" {
			t.Errorf("readers %+v, want one hls reader", full.Streams)
		}
		if m := metricsText(t, a); !strings.Contains(m, `relaymesh_stream_readers{stream="live/hls"} 1`) {
			t.Errorf("/metrics does not count the HLS reader")
		}
		// session_timeout = 2s: without requests the reader is gone
		waitStreams(t, a, "the HLS reader gone after session_timeout", func(sr streamsResp) bool {
			return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 0
		})
	})
	pub.Cmd.Process.Kill()
}

func metricsText(t *testing.T, a *agentProc) string {
	t.Helper()
	_, body := get(t, a.api("/metrics"), 10*time.Second)
	return body
}

// TestHLSAuthAndLimits: with signed play URLs on, a playlist without a
// token is refused (401), the token is carried into every URL the
// playlists name, a segment without it is refused, and ffmpeg plays the
// signed URL; the web page lists the stream only with its token; the
// per-stream reader limit counts HLS readers beside HTTP-FLV ones.
func TestHLSAuthAndLimits(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	keyFile := signingKey(t)
	a := startAgent(t, fmt.Sprintf("max_readers_per_stream = 1\n[auth]\npublish = false\nplay = true\nkey_file = %q\n", keyFile))
	sign := func(key string, ttl ...string) string {
		d := "10m"
		if len(ttl) > 0 {
			d = ttl[0]
		}
		return signPlay(t, keyFile, key, d)
	}
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Duration: 30 * time.Second}
	pub := testmedia.Publish(t, ctx, src, a.rtmp("live/sec"))
	waitStreams(t, a, "publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	tok := sign("live/sec")
	// the page lists only what the client may play
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	if _, page := get(t, base+"/", 10*time.Second); strings.Contains(page, `data-key="live/sec"`) {
		t.Errorf("the stream list shows live/sec to a client without its play token:\n%s", page)
	}
	if _, page := get(t, base+"/?"+tok, 10*time.Second); !strings.Contains(page, `data-key="live/sec"`) {
		t.Errorf("the stream list with live/sec's play token does not show it:\n%s", page)
	}

	if code, body := get(t, a.hls("live/sec", "index.m3u8"), 10*time.Second); code != 401 {
		t.Errorf("playlist without a token: %d %q, want 401", code, body)
	}
	if code, _ := get(t, a.hls("live/sec", "index.m3u8?"+sign("live/other")), 10*time.Second); code != 403 {
		t.Errorf("playlist with another stream's token: %d, want 403", code)
	}
	code, mv := get(t, a.hls("live/sec", "index.m3u8?"+tok), 20*time.Second)
	if code != 200 {
		t.Fatalf("signed playlist: %d %s", code, mv)
	}
	uris := func(pl string) []string {
		var out []string
		for _, l := range testmedia.Lines(pl) {
			if !strings.HasPrefix(l, "#") {
				out = append(out, l)
			} else if _, u, ok := strings.Cut(l, `URI="`); ok {
				out = append(out, u[:strings.Index(u, `"`)])
			}
		}
		return out
	}
	var segment string
	for _, u := range uris(mv) {
		if !strings.Contains(u, tok) {
			t.Errorf("multivariant playlist names %q without the token", u)
		}
		_, pl := get(t, a.hls("live/sec", u), 20*time.Second)
		for _, su := range uris(pl) {
			if su == "gap.mp4" {
				continue
			}
			if !strings.Contains(su, tok) {
				t.Errorf("media playlist %s names %q without the token", u, su)
			}
			if strings.Contains(su, "_seg") {
				segment = su
			}
		}
	}
	if segment == "" {
		t.Fatal("no segment listed")
	}
	bare, _, _ := strings.Cut(segment, "?")
	if code, _ := get(t, a.hls("live/sec", bare), 10*time.Second); code != 401 {
		t.Errorf("segment without the token: %d, want 401", code)
	}
	if code, _ := get(t, a.hls("live/sec", segment), 10*time.Second); code != 200 {
		t.Errorf("segment with the token: %d, want 200", code)
	}
	res, err := testmedia.Read(ctx, a.hls("live/sec", "index.m3u8?"+tok), 2*time.Second)
	if err != nil {
		t.Fatalf("ffmpeg on the signed LL-HLS URL: %v", err)
	}
	if res.VideoFrames < 45 || res.DecodeErrors != "" {
		t.Errorf("signed LL-HLS play got %d frames, errors %q", res.VideoFrames, res.DecodeErrors)
	}

	// the HLS session above holds the one reader allowed: an HTTP-FLV
	// player is refused, and a second HLS client (another token) too
	if _, err := testmedia.Read(ctx, a.flv("live/sec")+"?"+tok, 2*time.Second); err == nil {
		t.Errorf("HTTP-FLV player admitted beside the HLS reader with max_readers_per_stream = 1")
	}
	// another expiry: a different token, so another session
	if code, body := get(t, a.hls("live/sec", "index.m3u8?"+sign("live/sec", "20m")), 10*time.Second); code != 503 {
		t.Errorf("second HLS reader: %d %q, want 503 (reader limit)", code, body)
	}
	pub.Cmd.Process.Kill()
}

// TestHLSSettings: each [hls] key has its effect on the running binary:
// always_on muxes a stream nobody reads, idle_timeout closes an unread
// muxer, segment_count sizes the playlist window, page = false turns the
// web page off and enabled = false HLS itself.
func TestHLSSettings(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "[hls]\nalways_on = [\"live/on\"]\nidle_timeout = \"1s\"\nsegment_count = 8\npage = false\n")
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Duration: time.Minute}
	for _, k := range []string{"live/on", "live/off"} {
		p := testmedia.Publish(t, ctx, src, a.rtmp(k))
		defer p.Cmd.Process.Kill()
	}
	started := func(key string) bool {
		return strings.Contains(a.logs.String(), `"msg":"hls muxer started","node":"test-node","component":"hls","stream":"`+key+`"`)
	}
	testmedia.Eventually(t, 20*time.Second, "always_on muxes live/on without a reader", func() bool { return started("live/on") })
	if started("live/off") {
		t.Errorf("live/off muxed before anyone asked for it")
	}
	// segment_count = 8: the window holds 8 segments (the first 7 are the
	// gaps LL-HLS starts with, then real ones replace them)
	testmedia.Eventually(t, 30*time.Second, "the LL-HLS window of live/off holds 8 segments after 9", func() bool {
		_, pl := get(t, a.hls("live/off", "video1_stream.m3u8"), 20*time.Second)
		next, _ := llState(t, pl)
		return next >= 7+9 && strings.Count(pl, "#EXTINF:") == 8
	})
	// idle_timeout = 1s: nobody asks for live/off any more
	testmedia.Eventually(t, 20*time.Second, "live/off's muxer closed after idle_timeout", func() bool {
		return strings.Contains(a.logs.String(), `"msg":"hls muxer ended","node":"test-node","component":"hls","stream":"live/off"`)
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", a.ports["http"])
	if code, _ := get(t, base+"/", 10*time.Second); code != 404 {
		t.Errorf("GET / with hls.page = false: %d, want 404", code)
	}

	b := startAgent(t, "[hls]\nenabled = false\n")
	p := testmedia.Publish(t, ctx, src, b.rtmp("live/x"))
	defer p.Cmd.Process.Kill()
	waitStreams(t, b, "publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	if code, _ := get(t, b.hls("live/x", "index.m3u8"), 10*time.Second); code != 404 {
		t.Errorf("index.m3u8 with hls.enabled = false: %d, want 404", code)
	}
}

// TestHLSH265: an H.265 + AAC stream published over SRT plays over LL-HLS
// (fMP4 carries HEVC); the plain (MPEG-TS) variant, H.264 only, says so.
func TestHLSH265(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Codec: "libx265", Duration: 30 * time.Second}
	pub := testmedia.Publish(t, ctx, src, fmt.Sprintf("srt://127.0.0.1:%d?streamid=publish:live/hevc", a.ports["srt"]))
	defer pub.Cmd.Process.Kill()
	waitStreams(t, a, "H.265 publisher live", func(sr streamsResp) bool { return len(sr.Streams) == 1 && sr.Streams[0].Video == "H265" })
	res, err := testmedia.Read(ctx, a.hls("live/hevc", "index.m3u8"), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.VideoCodec != "hevc" || res.AudioCodec != "aac" || res.VideoFrames < 70 || !res.FirstKey || res.DecodeErrors != "" {
		t.Errorf("LL-HLS of an H.265 stream: %+v", res)
	}
	if code, body := get(t, a.hls("live/hevc", "plain.m3u8"), 20*time.Second); code != 409 || !strings.Contains(body, "H.264 only") {
		t.Errorf("plain.m3u8 of an H.265 stream: %d %q, want 409 naming the reason", code, body)
	}
}

// TestHLSReaderAcrossRepublish: an HLS player that keeps polling while
// its publisher is gone past the reconnect grace (a new stream) is a
// reader of the new stream, not of the one that ended.
func TestHLSReaderAcrossRepublish(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "[hls]\nsession_timeout = \"5m\"\n")
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Audio: true, GOP: 25, Duration: time.Minute}
	pl := a.hls("live/re", "video1_stream.m3u8")
	playing := func(what string) {
		t.Helper()
		testmedia.Eventually(t, 30*time.Second, what, func() bool {
			code, _ := get(t, pl, 20*time.Second)
			return code == 200
		})
		waitStreams(t, a, what+": one HLS reader", func(sr streamsResp) bool {
			return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 1
		})
	}
	pub := testmedia.Publish(t, ctx, src, a.rtmp("live/re"))
	playing("first publish plays")
	pub.Cmd.Process.Kill()
	if err := pub.Wait(30 * time.Second); err != nil && strings.Contains(err.Error(), "still running") {
		t.Fatal(err)
	}
	// reconnect_grace (500ms in the tests) runs out: the stream ends
	waitStreams(t, a, "stream gone", func(sr streamsResp) bool { return len(sr.Streams) == 0 })
	pub = testmedia.Publish(t, ctx, src, a.rtmp("live/re"))
	defer pub.Cmd.Process.Kill()
	playing("the second publish plays")
}
