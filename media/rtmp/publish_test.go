package rtmp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/testnode"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/unit"
)

// rawClient is a minimal RTMP publisher built on gortmplib's handshake and
// chunk writer, for sessions ffmpeg will not produce: silence, oversized
// announcements, messages that never end.
type rawClient struct {
	nc     net.Conn
	w      *rawmessage.Writer
	closed chan struct{} // the server closed the connection
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := handshake.DoClient(nc, false, false); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	nc.SetDeadline(time.Time{})
	c := &rawClient{nc: nc, w: rawmessage.NewWriter(nc, bytecounter.NewWriter(nc), false), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		io.Copy(io.Discard, nc)
	}()
	return c
}

func (c *rawClient) send(csid byte, typ uint8, ts time.Duration, msid uint32, body []byte) error {
	// gortmplib puts the message stream id on the wire big-endian: swap it
	// to the spec's byte order, as clients send it
	return c.w.Write(&rawmessage.Message{ChunkStreamID: csid, Type: typ, Timestamp: ts, MessageStreamID: bits.ReverseBytes32(msid), Body: body})
}

func (c *rawClient) cmd(msid uint32, args ...any) error {
	b, err := amf0.Data(args).Marshal()
	if err != nil {
		return err
	}
	return c.send(3, 20, 0, msid, b)
}

func (c *rawClient) connect(app string) error {
	return c.cmd(0, "connect", float64(1), amf0.Object{{Key: "app", Value: app}, {Key: "tcUrl", Value: "rtmp://127.0.0.1/" + app}})
}

func (c *rawClient) publish(t *testing.T, app, name string) {
	t.Helper()
	for _, err := range []error{
		c.connect(app),
		c.cmd(0, "createStream", float64(2), nil),
		c.cmd(1, "publish", float64(3), nil, name, "live"),
	} {
		if err != nil {
			t.Fatalf("publish %s/%s: %v", app, name, err)
		}
	}
}

// waitClosed waits (bounded) for the server to close the connection.
func (c *rawClient) waitClosed(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(d):
		t.Fatalf("server kept the connection open %s after %s", d, what)
	}
}

// goodStream publishes a realtime ffmpeg stream and checks at the end of
// the test that it still plays cleanly: bad clients cost only themselves.
func goodStream(t *testing.T, n *testnode.Node, key string) func() {
	t.Helper()
	ctx := context.Background()
	testmedia.Publish(t, ctx, testmedia.Source{Realtime: true, Duration: 20 * time.Second}, n.RTMPURL(key))
	testmedia.Eventually(t, 10*time.Second, "stream "+key, func() bool { return n.Hub.Stream(key) != nil })
	return func() {
		t.Helper()
		res, err := testmedia.Read(ctx, n.RTMPURL(key), 2*time.Second)
		if err != nil {
			t.Fatalf("good stream: %v", err)
		}
		if res.VideoFrames < 25 || res.DecodeErrors != "" || res.NonMonotonic != 0 {
			t.Errorf("good stream after bad publishers: %d frames, %d non-monotonic, errors %q", res.VideoFrames, res.NonMonotonic, res.DecodeErrors)
		}
	}
}

// TestBadPublishers: a publisher that stalls, one that announces an
// oversized chunk size and one whose message never ends are each cut with
// a logged reason while another stream keeps flowing.
func TestBadPublishers(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	n := start(t, fastHub(), rtmp.Config{ReadTimeout: time.Second, HandshakeTimeout: 3 * time.Second})
	check := goodStream(t, n, "live/good")
	addr := n.RTMP.Addr().String()
	vhdr := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}
	key := []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}

	cases := []struct {
		name string
		run  func(t *testing.T, c *rawClient)
		log  string // the reason, in the server's log
	}{
		{"stalled publisher", func(t *testing.T, c *rawClient) {
			c.publish(t, "live", "stall")
			testmedia.Eventually(t, 10*time.Second, "live/stall published", func() bool { return n.Hub.Stream("live/stall") != nil })
			for i := range 5 {
				if err := c.send(6, 9, time.Duration(i*40)*time.Millisecond, 1, key); err != nil {
					t.Fatal(err)
				}
			}
			// then silence
			c.waitClosed(t, 15*time.Second, "the publisher went silent")
		}, "no complete RTMP message from the publisher within 1s"},
		{"oversized chunk size", func(t *testing.T, c *rawClient) {
			if err := c.connect("live"); err != nil {
				t.Fatal(err)
			}
			if err := c.send(2, 1, 0, 0, []byte{0x7f, 0xff, 0xff, 0xff}); err != nil {
				t.Fatal(err)
			}
			c.waitClosed(t, 10*time.Second, "a 2 GiB chunk size")
		}, "chunk size 2147483647 out of range"},
		{"never-ending message", func(t *testing.T, c *rawClient) {
			c.publish(t, "live", "trickle")
			if err := c.send(6, 9, 0, 1, vhdr); err != nil {
				t.Fatal(err)
			}
			// a video message declaring 8 MB, trickled one 128-byte chunk
			// at a time (the default chunk size)
			size := 8 << 20
			hdr := []byte{0x06, 0, 0, 0x28, byte(size >> 16), byte(size >> 8), byte(size), 9, 1, 0, 0, 0}
			chunk := make([]byte, 128)
			copy(chunk, key)
			if _, err := c.nc.Write(append(hdr, chunk...)); err != nil {
				t.Fatal(err)
			}
			cont := append([]byte{0xc6}, make([]byte, 128)...)
			deadline := time.Now().Add(15 * time.Second)
			for {
				select {
				case <-c.closed:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.nc.Write(cont); err != nil {
					c.waitClosed(t, 5*time.Second, "a write error")
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("server still reading a never-ending message after 15 s")
				}
			}
		}, `"stream":"live/trickle"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			tc.run(t, c)
			testmedia.Eventually(t, 5*time.Second, "the reason in the log: "+tc.log, func() bool {
				return strings.Contains(n.Logs.String(), tc.log)
			})
		})
	}
	// the trickled connection must be logged as closed with a reason
	testmedia.Eventually(t, 5*time.Second, "a logged reason for the trickle", func() bool {
		for _, l := range testmedia.Lines(n.Logs.String()) {
			if strings.Contains(l, `"stream":"live/trickle"`) && strings.Contains(l, `"reason"`) {
				return true
			}
		}
		return false
	})
	for _, k := range []string{"live/stall", "live/trickle"} {
		testmedia.Eventually(t, 5*time.Second, k+" to end", func() bool { return n.Hub.Stream(k) == nil })
	}
	check()
}

// TestPublisherReconnect: a player started during the first publisher
// stays connected across a second publisher that starts after the first
// exits, and receives both sessions on one monotonic timeline.
func TestPublisherReconnect(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	hc := fastHub()
	hc.ReconnectGrace = 8 * time.Second // generous: ffmpeg may start slowly on a loaded machine
	n := start(t, hc, rtmp.Config{})
	ctx := context.Background()
	src := testmedia.Source{Realtime: true, Duration: 3 * time.Second, GOP: 25, Audio: true}.Defaults()
	first := testmedia.Publish(t, ctx, src, n.RTMPURL("live/re"))
	testmedia.Eventually(t, 10*time.Second, "first publisher", func() bool { return n.Hub.Stream("live/re") != nil })
	stream := n.Hub.Stream("live/re")

	results := readBoth(ctx, n, "live/re", 20*time.Second)
	testmedia.Eventually(t, 10*time.Second, "two readers", func() bool { return stream.ReaderCount() == 2 })
	if err := first.Wait(15 * time.Second); err != nil {
		t.Fatalf("first publisher: %v: %s", err, first.Stderr)
	}
	second := testmedia.Publish(t, ctx, src, n.RTMPURL("live/re"))
	if err := second.Wait(15 * time.Second); err != nil {
		t.Fatalf("second publisher: %v: %s", err, second.Stderr)
	}
	if n.Hub.Stream("live/re") != stream {
		t.Errorf("the second publisher got a new stream")
	}
	checkReads(t, results, func(t *testing.T, res testmedia.Result) {
		// one session has src.Frames() frames: more means the
		// reader got both
		if res.VideoFrames <= src.Frames()+src.FPS/2 {
			t.Errorf("video frames = %d, want more than one session's %d", res.VideoFrames, src.Frames())
		}
		if !res.FirstKey {
			t.Errorf("first video frame is not a keyframe")
		}
		if res.NonMonotonic != 0 {
			t.Errorf("%d video timestamps did not increase", res.NonMonotonic)
		}
		// The capture is Matroska: the second session's codec
		// headers make ffmpeg's muxer rewrite CodecPrivate, which its
		// demuxer then reports. That is the capture, not the stream.
		var errs []string
		for _, l := range testmedia.Lines(res.DecodeErrors) {
			if !strings.HasPrefix(l, "[matroska,webm @") {
				errs = append(errs, l)
			}
		}
		if len(errs) != 0 {
			t.Errorf("decode errors: %s", strings.Join(errs, "\n"))
		}
	})
}

// TestMaxBitratePublisher: a 3 Mbit/s publisher on a 1 Mbit/s limit is
// disconnected and the log names the reason.
func TestMaxBitratePublisher(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	hc := fastHub()
	hc.MaxBitrate = 1_000_000
	hc.BitrateWindow = 2 * time.Second
	n := start(t, hc, rtmp.Config{})
	// noise keeps x264 at its target rate
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=20,noise=alls=60:allf=t",
		"-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "1M",
		"-g", "25", "-pix_fmt", "yuv420p", "-f", "flv", n.RTMPURL("live/fat"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	testmedia.Eventually(t, 10*time.Second, "live/fat published", func() bool { return n.Hub.Stream("live/fat") != nil })
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("3 Mbit/s publisher still connected 15 s after a 1 Mbit/s limit")
	}
	testmedia.Eventually(t, 5*time.Second, "the reason in the log", func() bool {
		return strings.Contains(n.Logs.String(), "publisher exceeded the maximum bitrate")
	})
	if n.RTMP.Refused.Load() == 0 {
		t.Errorf("bitrate cut not counted as refused")
	}
}

// h265Publisher starts publishing H.265 to live/h265 and returns a
// function that writes one access unit.
type h265Publisher func(t *testing.T, ctx context.Context, n *testnode.Node, vps, sps, pps []byte) func(i int, au [][]byte) error

// gortmplibPublisher publishes with gortmplib's client (Enhanced RTMP).
func gortmplibPublisher(t *testing.T, ctx context.Context, n *testnode.Node, vps, sps, pps []byte) func(int, [][]byte) error {
	pu, _ := url.Parse(fmt.Sprintf("rtmp://%s/live#h265", n.RTMP.Addr()))
	pc := &gortmplib.Client{URL: pu, Publish: true}
	if err := pc.Initialize(ctx); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(pc.Close)
	track := &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}
	w := &gortmplib.Writer{Conn: pc, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	return func(i int, au [][]byte) error {
		ts := time.Duration(i) * 40 * time.Millisecond
		return w.WriteH265(track, ts, ts, au)
	}
}

// enhancedPublisher sends Enhanced RTMP by hand the way OBS and ffmpeg
// 6.1+ do: the frame type of every coded frame says key or inter.
func enhancedPublisher(t *testing.T, ctx context.Context, n *testnode.Node, vps, sps, pps []byte) func(int, [][]byte) error {
	c := dialRaw(t, n.RTMP.Addr().String())
	c.publish(t, "live", "h265")
	rec := make([]byte, 23)
	rec[0], rec[21], rec[22] = 1, 3, 3
	for _, nalu := range [][]byte{vps, sps, pps} {
		rec = append(rec, nalu[0]>>1&0x3f, 0, 1, byte(len(nalu)>>8), byte(len(nalu)))
		rec = append(rec, nalu...)
	}
	if err := c.send(6, 9, 0, 1, append([]byte{0x90, 'h', 'v', 'c', '1'}, rec...)); err != nil {
		t.Fatal(err)
	}
	return func(i int, au [][]byte) error {
		ft := byte(2)
		if h265.IsRandomAccess(au) {
			ft = 1
		}
		body := []byte{0x80 | ft<<4 | 3, 'h', 'v', 'c', '1'}
		for _, nalu := range au {
			body = append(body, byte(len(nalu)>>24), byte(len(nalu)>>16), byte(len(nalu)>>8), byte(len(nalu)))
			body = append(body, nalu...)
		}
		return c.send(6, 9, time.Duration(i)*40*time.Millisecond, 1, body)
	}
}

// TestH265PassThrough publishes H.265 with Enhanced RTMP (ffmpeg 5.1
// cannot) and reads it back with gortmplib's client and over HTTP-FLV.
func TestH265PassThrough(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	const frames = 75 // more than gortmplib's 2 s track analysis at 25 fps
	aus, vps, sps, pps := h265AUs(t, frames)
	cases := []struct {
		name string
		pub  h265Publisher
	}{
		{"gortmplib publisher (frame type 0: keyframes from NAL types)", gortmplibPublisher},
		{"Enhanced publisher with frame types", enhancedPublisher},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h265RoundTrip(t, frames, aus, vps, sps, pps, tc.pub)
		})
	}
}

func h265RoundTrip(t *testing.T, frames int, aus [][][]byte, vps, sps, pps []byte, pub h265Publisher) {
	n := start(t, fastHub(), rtmp.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writeAU := pub(t, ctx, n, vps, sps, pps)
	testmedia.Eventually(t, 10*time.Second, "live/h265 published with codecs", func() bool {
		s := n.Hub.Stream("live/h265")
		return s != nil && s.Codecs().Video != ""
	})
	if got, want := n.Hub.Stream("live/h265").Codecs(), (unit.CodecInfo{Video: "H265", Width: 640, Height: 360}); got != want {
		t.Errorf("Codecs() = %+v, want %+v", got, want)
	}

	// RTMP reader
	var rtmpAUs atomic.Int64
	var rtmpCodec atomic.Value
	rtmpDone := make(chan error, 1)
	go func() {
		ru, _ := url.Parse(fmt.Sprintf("rtmp://%s/live#h265", n.RTMP.Addr()))
		rc := &gortmplib.Client{URL: ru}
		if err := rc.Initialize(ctx); err != nil {
			rtmpDone <- err
			return
		}
		defer rc.Close()
		rc.NetConn().SetReadDeadline(time.Now().Add(20 * time.Second))
		r := &gortmplib.Reader{Conn: rc}
		if err := r.Initialize(); err != nil {
			rtmpDone <- err
			return
		}
		for _, tr := range r.Tracks() {
			rtmpCodec.Store(fmt.Sprintf("%T", tr.Codec))
			if _, ok := tr.Codec.(*codecs.H265); ok {
				r.OnDataH265(tr, func(pts, dts time.Duration, au [][]byte) {
					if h265.IsRandomAccess(au) || len(au) > 0 && h265.NALUType((au[0][0]>>1)&0x3f) < 32 {
						rtmpAUs.Add(1)
					}
				})
			}
		}
		for rtmpAUs.Load() < int64(frames) {
			if err := r.Read(); err != nil {
				rtmpDone <- err
				return
			}
		}
		rtmpDone <- nil
	}()

	// HTTP-FLV reader
	type flvResult struct {
		first  []byte // first video tag body
		frames int
		err    error
	}
	flvDone := make(chan flvResult, 1)
	go func() {
		var res flvResult
		defer func() { flvDone <- res }()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.FLVURL("live/h265"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res.err = err
			return
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if _, err := io.ReadFull(br, make([]byte, 13)); err != nil {
			res.err = err
			return
		}
		for res.frames < frames {
			h := make([]byte, 11)
			if _, err := io.ReadFull(br, h); err != nil {
				res.err = fmt.Errorf("after %d frames: %w", res.frames, err)
				return
			}
			size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
			body := make([]byte, size+4)
			if _, err := io.ReadFull(br, body); err != nil {
				res.err = err
				return
			}
			if h[0] != 9 || size < 5 {
				continue
			}
			if res.first == nil {
				res.first = body[:size]
			}
			if pt := body[0] & 0x0f; body[0]&0x80 != 0 && (pt == 1 || pt == 3) {
				res.frames++
			}
		}
	}()
	testmedia.Eventually(t, 10*time.Second, "two readers on live/h265", func() bool {
		return n.Hub.Stream("live/h265").ReaderCount() == 2
	})
	for i, au := range aus {
		if err := writeAU(i, au); err != nil {
			t.Fatalf("write AU %d: %v", i, err)
		}
	}

	t.Run("rtmp", func(t *testing.T) {
		select {
		case err := <-rtmpDone:
			if err != nil {
				t.Fatalf("after %d AUs: %v", rtmpAUs.Load(), err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("got %d of %d AUs", rtmpAUs.Load(), frames)
		}
		if c, _ := rtmpCodec.Load().(string); c != "*codecs.H265" {
			t.Errorf("track codec %q, want *codecs.H265", c)
		}
		if got := rtmpAUs.Load(); got != int64(frames) {
			t.Errorf("AUs = %d, want %d", got, frames)
		}
	})
	t.Run("httpflv", func(t *testing.T) {
		var res flvResult
		select {
		case res = <-flvDone:
		case <-time.After(20 * time.Second):
			t.Fatalf("HTTP-FLV reader did not finish")
		}
		if res.err != nil {
			t.Fatal(res.err)
		}
		// the publisher's bytes pass through untouched: Enhanced
		// (bit 7), SequenceStart (packet type 0), FourCC hvc1; the frame
		// type is whatever the publisher sent (gortmplib sends 0)
		if len(res.first) < 5 || res.first[0]&0x8f != 0x80 || string(res.first[1:5]) != "hvc1" {
			t.Errorf("first video tag starts % x, want Enhanced SequenceStart 'hvc1' (80|90 68 76 63 31)", res.first[:min(5, len(res.first))])
		}
		if res.frames != frames {
			t.Errorf("frames = %d, want %d", res.frames, frames)
		}
	})
}

// h265AUs encodes a 640x360 H.265 clip with ffmpeg and splits it into
// access units (Annex-B, no B-frames so PTS = DTS).
func h265AUs(t *testing.T, frames int) (aus [][][]byte, vps, sps, pps []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clip.h265")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-frames:v", fmt.Sprint(frames),
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "bframes=0:keyint=25:log-level=error",
		"-pix_fmt", "yuv420p", "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	nalus := splitAnnexB(b)
	var cur [][]byte
	hasVCL := false
	for _, nalu := range nalus {
		typ := h265.NALUType((nalu[0] >> 1) & 0x3f)
		switch typ {
		case h265.NALUType_VPS_NUT:
			vps = nalu
		case h265.NALUType_SPS_NUT:
			sps = nalu
		case h265.NALUType_PPS_NUT:
			pps = nalu
		}
		vcl := typ < 32
		firstSlice := vcl && len(nalu) > 2 && nalu[2]&0x80 != 0
		if hasVCL && (firstSlice || !vcl && typ != h265.NALUType_SUFFIX_SEI_NUT) {
			aus = append(aus, cur)
			cur, hasVCL = nil, false
		}
		cur = append(cur, nalu)
		hasVCL = hasVCL || vcl
	}
	if hasVCL {
		aus = append(aus, cur)
	}
	if len(aus) != frames || vps == nil || sps == nil || pps == nil {
		t.Fatalf("split %d AUs (want %d), VPS/SPS/PPS found: %v %v %v", len(aus), frames, vps != nil, sps != nil, pps != nil)
	}
	return aus, vps, sps, pps
}

// splitAnnexB splits an Annex-B byte stream at its start codes
// (mediacommon's AnnexB caps the NALUs per call; a file has many).
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+3 <= len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// TestUnpublish: after FCUnpublish and deleteStream the connection stays
// open for commands, as nginx-rtmp keeps it (GStreamer's rtmp2sink fails
// when the server closes first): the client may publish again on it, and
// one left idle is closed after the handshake timeout, quietly.
func TestUnpublish(t *testing.T) {
	n := start(t, fastHub(), rtmp.Config{HandshakeTimeout: time.Second})
	addr := n.RTMP.Addr().String()
	vhdr := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}
	key := []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65}
	publishing := func(k string) func() bool {
		return func() bool {
			s := n.Hub.Stream(k)
			if s == nil {
				return false
			}
			_, ok := s.Publisher()
			return ok
		}
	}
	media := func(t *testing.T, c *rawClient) {
		t.Helper()
		for i, b := range [][]byte{vhdr, key, key} {
			if err := c.send(6, 9, time.Duration(i*40)*time.Millisecond, 1, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	unpublish := func(t *testing.T, c *rawClient, k string) {
		t.Helper()
		for _, err := range []error{
			c.cmd(0, "FCUnpublish", float64(4), nil, k),
			c.cmd(1, "deleteStream", float64(5), nil, float64(1)),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name string
		run  func(t *testing.T, c *rawClient)
	}{
		{"publish again on the same connection", func(t *testing.T, c *rawClient) {
			c.publish(t, "live", "again")
			media(t, c)
			testmedia.Eventually(t, 5*time.Second, "the first publish", publishing("live/again"))
			unpublish(t, c, "again")
			testmedia.Eventually(t, 5*time.Second, "the unpublish", func() bool { return !publishing("live/again")() })
			for _, err := range []error{
				c.cmd(0, "createStream", float64(6), nil),
				c.cmd(1, "publish", float64(7), nil, "again", "live"),
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			media(t, c)
			testmedia.Eventually(t, 5*time.Second, "the second publish on the same connection", publishing("live/again"))
		}},
		{"idle after unpublishing", func(t *testing.T, c *rawClient) {
			c.publish(t, "live", "idle")
			media(t, c)
			testmedia.Eventually(t, 5*time.Second, "the publish", publishing("live/idle"))
			unpublish(t, c, "idle")
			c.waitClosed(t, 5*time.Second, "the client stayed idle after unpublishing")
			for _, l := range testmedia.Lines(n.Logs.String()) {
				if strings.Contains(l, `"stream":"live/idle"`) && strings.Contains(l, `"reason"`) {
					t.Errorf("an idle client after unpublishing is logged as a failure: %s", l)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, dialRaw(t, addr))
		})
	}
}

// TestPublisherControlLate: a publisher that, long after the handshake
// timeout, pings the server or has it acknowledge bytes (a small Window
// Acknowledgement Size) gets its answers and keeps publishing until it
// unpublishes: the server's replies are not held to the deadline of the
// command phase.
func TestPublisherControlLate(t *testing.T) {
	const handshake = 500 * time.Millisecond
	n := start(t, fastHub(), rtmp.Config{HandshakeTimeout: handshake})
	vhdr := []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff}
	// a 500-byte IDR slice, so that a few frames pass an ack window
	key := append([]byte{0x17, 1, 0, 0, 0, 0, 0, 0x01, 0xf4, 0x65}, make([]byte, 499)...)
	cases := []struct {
		name        string
		before, end []byte // a user control or window size message body, and its type
		typ         uint8
	}{
		{"ping request", nil, []byte{0, 6, 0, 0, 0, 1}, 4},
		{"window acknowledgement size", []byte{0, 0, 0x03, 0xe8}, nil, 5}, // 1000 bytes
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := "late" + strings.ReplaceAll(tc.name, " ", "-")
			c := dialRaw(t, n.RTMP.Addr().String())
			dialed := time.Now()
			if tc.before != nil {
				if err := c.send(2, tc.typ, 0, 0, tc.before); err != nil {
					t.Fatal(err)
				}
			}
			c.publish(t, "live", k)
			frame := func(i int, body []byte) {
				t.Helper()
				if err := c.send(6, 9, time.Duration(i*40)*time.Millisecond, 1, body); err != nil {
					t.Fatalf("frame %d: %v (the server closed the connection)", i, err)
				}
			}
			frame(0, vhdr)
			// media until well past the handshake timeout
			tick := time.NewTicker(40 * time.Millisecond)
			defer tick.Stop()
			i := 1
			for ; time.Since(dialed) < 3*handshake; i++ {
				<-tick.C
				frame(i, key)
			}
			if tc.end != nil {
				if err := c.send(2, tc.typ, 0, 0, tc.end); err != nil {
					t.Fatal(err)
				}
			}
			for j := range 5 {
				<-tick.C
				frame(i+j, key)
			}
			if err := c.cmd(0, "FCUnpublish", float64(4), nil, k); err != nil {
				t.Fatal(err)
			}
			testmedia.Eventually(t, 5*time.Second, "the publisher's own unpublish", func() bool {
				for _, l := range testmedia.Lines(n.Logs.String()) {
					if strings.Contains(l, `"stream":"live/`+k+`"`) && strings.Contains(l, `"msg":"unpublished"`) {
						return true
					}
				}
				return false
			})
			for _, l := range testmedia.Lines(n.Logs.String()) {
				if strings.Contains(l, `"stream":"live/`+k+`"`) && strings.Contains(l, `"reason"`) {
					t.Errorf("the publisher was cut: %s", l)
				}
			}
		})
	}
}
