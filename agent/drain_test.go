package agent_test

import (
	"bufio"
	"context"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// flvTally is what a raw HTTP-FLV reader saw: whole tags, and how the
// stream ended.
type flvTally struct {
	videoTags int
	truncated string // a tag cut short, or "" when every tag was whole
	end       error  // io.EOF for a clean end
}

// slowFLVReader plays url over a raw TCP connection with a small receive
// buffer: it reads until it has minVideo video tags, closes ready, stops
// reading until resume is closed (so the agent's writes to it block and
// queue), then reads to the end, checking every tag.
func slowFLVReader(addr, key string, minVideo int, ready chan<- struct{}, resume <-chan struct{}) <-chan flvTally {
	done := make(chan flvTally, 1)
	go func() {
		var t flvTally
		defer func() { done <- t }()
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.end = err
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /%s.flv HTTP/1.1\r\nHost: x\r\n\r\n", key)
		br := bufio.NewReaderSize(c, 4096)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.end = err
				return
			}
			if line == "\r\n" {
				break
			}
		}
		head := make([]byte, 13) // FLV header and PreviousTagSize0
		if _, err := io.ReadFull(br, head); err != nil || string(head[:3]) != "FLV" {
			t.end = fmt.Errorf("no FLV header: %v", err)
			return
		}
		paused := false
		for {
			if !paused && t.videoTags >= minVideo {
				close(ready)
				<-resume
				paused = true
			}
			var th [11]byte
			if _, err := io.ReadFull(br, th[:]); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					t.truncated = "tag header cut short"
				}
				t.end = err
				return
			}
			size := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
			body := make([]byte, size+4)
			if _, err := io.ReadFull(br, body); err != nil {
				t.truncated = fmt.Sprintf("tag of %d bytes cut short: %v", size, err)
				t.end = err
				return
			}
			if prev := int(be.BigEndian.Uint32(body[size:])); prev != size+11 {
				t.truncated = fmt.Sprintf("PreviousTagSize %d after a tag of %d", prev, size+11)
				t.end = errors.New("bad tag")
				return
			}
			if th[0]&0x1f == 9 {
				t.videoTags++
			}
		}
	}()
	return done
}

// TestSIGTERMDrainsEveryProtocol: at SIGTERM the agent drains players of
// every protocol before it exits: RTMP, HTTP-FLV and SRT players (ffmpeg)
// end cleanly with decodable media, and an HTTP-FLV player that is behind
// (its socket full while the agent shuts down) still gets every tag whole
// and a clean end of stream, not a cut.
func TestSIGTERMDrainsEveryProtocol(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	if testing.Short() {
		t.Skip("end-to-end: runs without -short")
	}
	a := startAgent(t, "")
	ctx := context.Background()
	testmedia.Publish(t, ctx, testmedia.Source{Realtime: true, Duration: 40 * time.Second}, a.rtmp("live/drain"))
	waitStreams(t, a, "stream live", func(sr streamsResp) bool { return len(sr.Streams) == 1 })
	players := map[string]<-chan playerResult{
		"rtmp":    startPlayer(ctx, a.rtmp("live/drain"), 60*time.Second),
		"httpflv": startPlayer(ctx, a.flv("live/drain"), 60*time.Second),
		"srt":     startPlayer(ctx, fmt.Sprintf("srt://127.0.0.1:%d?streamid=read:live/drain", a.ports["srt"]), 60*time.Second),
	}
	ready, resume := make(chan struct{}), make(chan struct{})
	slow := slowFLVReader(fmt.Sprintf("127.0.0.1:%d", a.ports["http"]), "live/drain", 30, ready, resume)
	waitStreams(t, a, "four players attached", func(sr streamsResp) bool {
		return len(sr.Streams) == 1 && sr.Streams[0].ReaderCount == 4
	})
	select {
	case <-ready: // a second of media reached the players
	case tally := <-slow:
		t.Fatalf("the raw HTTP-FLV reader ended before it had 30 video tags: %+v", tally)
	case <-time.After(20 * time.Second):
		t.Fatal("the raw HTTP-FLV reader got no 30 video tags in 20 s")
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	testmedia.Eventually(t, 10*time.Second, "the agent to start its shutdown", func() bool {
		return strings.Contains(a.logs.String(), `"msg":"shutting down"`)
	})
	close(resume)

	for proto, done := range players {
		select {
		case r := <-done:
			switch {
			case r.err != nil:
				t.Errorf("%s player did not end cleanly: %v", proto, r.err)
			case r.res.VideoFrames == 0:
				t.Errorf("%s player got no frames", proto)
			case r.res.DecodeErrors != "" && proto == "srt":
				// gosrt closes without lingering, so under CPU load the
				// last packets of the final frame can be lost at the end
				// (the libsrt engine of issue 10 lingers; then make this
				// an error as for the others)
				t.Logf("srt player: %d frames, the end cut: %q", r.res.VideoFrames, r.res.DecodeErrors)
			case r.res.DecodeErrors != "":
				t.Errorf("%s player got %d frames, decode errors %q", proto, r.res.VideoFrames, r.res.DecodeErrors)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s player still reading 30 s after SIGTERM", proto)
		}
	}
	select {
	case tally := <-slow:
		if tally.truncated != "" || !errors.Is(tally.end, io.EOF) {
			t.Errorf("the HTTP-FLV player that was behind: %d video tags, cut: %q, end: %v; want whole tags and EOF",
				tally.videoTags, tally.truncated, tally.end)
		}
	case <-time.After(30 * time.Second):
		t.Error("the HTTP-FLV player that was behind still reading 30 s after SIGTERM")
	}
	a.waitExited(t, 15*time.Second)
	l := a.logs.String()
	if !strings.Contains(l, `"msg":"drained"`) {
		t.Errorf("the agent did not log drained (every connection finished within the drain timeout)")
	}
	if !strings.Contains(l, `"msg":"stopped"`) {
		t.Errorf("no 'stopped' log line")
	}
}
