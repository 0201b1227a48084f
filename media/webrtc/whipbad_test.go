package webrtc_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/internal/testmedia/webrtcpeer"
	"github.com/relaymesh/relaymesh/media/webrtc"
)

// outPkt is a packet the test publisher sends: inSeq ones take the next
// sequence number, the others keep theirs; skip ones take it and are not
// sent (a loss); jump moves the sequence on by that much for good before
// the packet takes its number.
type outPkt struct {
	p     *rtp.Packet
	inSeq bool
	skip  bool
	jump  uint16
}

// mutation turns frame i's packets (ts its RTP time, next the sequence
// number its first packet gets) into what is sent.
type mutation func(pkts []*rtp.Packet, ts uint32, next uint16) []outPkt

// rtpPublisher sends an Annex B H.264 file over a TrackLocalStaticRTP at
// 25 fps, packetized by the test (600-byte payloads: keyframes in FU-A),
// passing each frame through mutate.
func rtpPublisher(ctx context.Context, t *testing.T, track *pwebrtc.TrackLocalStaticRTP, path string, mutate func(frame int) mutation) {
	pz := rtp.NewPacketizer(600, 102, 1, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	seq := uint16(60000) // wraps during the test
	frame := 0
	webrtcpeer.AccessUnits(ctx, t, path, func(au []byte) error {
		ts := uint32(frame * 3600)
		pkts := pz.Packetize(au, 3600)
		for _, p := range pkts {
			p.Timestamp = ts
		}
		out := clean(pkts)
		if m := mutate(frame); m != nil {
			out = m(pkts, ts, seq)
		}
		frame++
		for _, o := range out {
			seq += o.jump
			if o.inSeq {
				o.p.SequenceNumber = seq
				seq++
			}
			if o.skip {
				continue
			}
			if err := track.WriteRTP(o.p); err != nil {
				t.Logf("publisher: %v", err)
				return err
			}
		}
		return nil
	})
}

func clean(pkts []*rtp.Packet) []outPkt {
	out := make([]outPkt, len(pkts))
	for i, p := range pkts {
		out[i] = outPkt{p: p, inSeq: true}
	}
	return out
}

// extra sends p (its sequence number the next one, or its own when
// !inSeq) before packet at of the frame (at == len: after the frame).
func extra(at int, inSeq bool, p func(ts uint32, next uint16) *rtp.Packet) mutation {
	return func(pkts []*rtp.Packet, ts uint32, next uint16) []outPkt {
		out := clean(pkts)
		at := min(at, len(out))
		return append(out[:at], append([]outPkt{{p: p(ts, next), inSeq: inSeq}}, out[at:]...)...)
	}
}

// each changes every packet of the frame.
func each(f func(p *rtp.Packet)) mutation {
	return func(pkts []*rtp.Packet, _ uint32, _ uint16) []outPkt {
		for _, p := range pkts {
			f(p)
		}
		return clean(pkts)
	}
}

// nth changes packet i of the frame (the last one if it has fewer).
func nth(i int, f func(p *rtp.Packet)) mutation {
	return func(pkts []*rtp.Packet, _ uint32, _ uint16) []outPkt {
		f(pkts[min(i, len(pkts)-1)])
		return clean(pkts)
	}
}

func pkt(ts uint32, payload ...byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: ts}, Payload: payload}
}

// whipMutations is the table of bad packets the WHIP tests inject, by
// name: inside a frame (the frame and the rest of its GOP are dropped) or
// between frames (only the packet is).
var whipMutations = []struct {
	name string
	key  bool // put into a keyframe (else into a P frame)
	m    mutation
}{
	{"padding longer than the packet, between frames", false, extra(0, true, func(ts uint32, _ uint16) *rtp.Packet {
		p := pkt(ts-1800, 0x41, 0x9a, 200)
		p.Padding = true
		return p
	})},
	{"zero padding inside a frame", true, extra(1, true, func(ts uint32, _ uint16) *rtp.Packet {
		p := pkt(ts, 0x41, 0x9a, 0)
		p.Padding = true
		return p
	})},
	{"unknown payload type inside a frame", true, extra(1, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts, webrtcpeer.WithPT(96, 0x41, 0x9a)...) })},
	{"Opus payload type on the video track", false, extra(0, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts, webrtcpeer.WithPT(111, 0xfc, 1, 2)...) })},
	{"truncated: header only", true, extra(1, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts) })},
	{"truncated FU-A", true, extra(1, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts, 0x7c) })},
	{"FU-A start inside a FU-A", true, nth(1, func(p *rtp.Packet) {
		if len(p.Payload) > 2 && p.Payload[0]&0x1f == 28 {
			p.Payload[1] |= 0x80
		}
	})},
	{"FU-A part without its start", false, extra(0, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts, 0x7c, 0x05, 1, 2, 3) })},
	{"STAP-A size past its end", false, extra(0, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts, 24, 0, 50, 0x67, 1) })},
	{"NAL type 0 and forbidden bit", false, extra(0, true, func(ts uint32, _ uint16) *rtp.Packet { return pkt(ts, 0x80, 1, 2) })},
	// one packet far ahead would be the last SRTP takes for a long while
	// (replay protection refuses the packets behind it): it is only in
	// TestH264AssemblerMutations; here the sequence jumps for good
	{"sequence 10000 ahead for good", true, func(pkts []*rtp.Packet, _ uint32, _ uint16) []outPkt {
		out := clean(pkts)
		out[0].jump = 10000
		return out
	}},
	{"sequence number 10000 back", false, extra(1, false, func(ts uint32, next uint16) *rtp.Packet {
		p := pkt(ts, 0x41, 0x9a, 1)
		p.SequenceNumber = next - 10000
		return p
	})},
	{"timestamp of one frame 2^31 ahead", true, each(func(p *rtp.Packet) { p.Timestamp += 1 << 31 })},
	{"timestamp of one frame 10 s back", false, each(func(p *rtp.Packet) { p.Timestamp -= 900000 })},
	{"marker bit lost", false, nth(99, func(p *rtp.Packet) { p.Marker = false })},
}

// whipSession connects a WHIP publisher whose video the test packetizes
// itself; mutate says what frame i's packets become.
func whipSession(t *testing.T, key string, mutate func(frame int) mutation) (*webrtcNode, string) {
	t.Helper()
	wn := nodeWithLog(t, webrtc.Config{})
	pc := webrtcpeer.NewWith(t, &webrtcpeer.PTSwitch{})
	track := webrtcpeer.H264RTPTrack(t, pc)
	src := webrtcpeer.H264File(t, 40, testGOP)
	loc := webrtcpeer.Connect(t, pc, wn.FLVBase()+"/"+key+"/whip")
	pctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	go rtpPublisher(pctx, t, track, src, mutate)
	testmedia.Eventually(t, 15*time.Second, "stream has H264", func() bool {
		st := wn.Hub.Stream(key)
		return st != nil && st.Codecs().Video == "H264"
	})
	return wn, loc
}

// gopSchedule applies one mutation every other GOP of the test file (a
// keyframe every testGOP frames) once started, into the keyframe or the
// middle P frame: each costs at most its own GOP.
type gopSchedule struct {
	muts  []mutation
	key   []bool
	start chan struct{}
	base  int // the first GOP mutated; owned by the publisher
}

const testGOP = 10

func newGOPSchedule(muts []mutation, key []bool) *gopSchedule {
	return &gopSchedule{muts: muts, key: key, start: make(chan struct{}), base: -1}
}

func (g *gopSchedule) mutate(frame int) mutation {
	select {
	case <-g.start:
	default:
		return nil
	}
	if g.base < 0 {
		g.base = (frame/testGOP + 2) * testGOP
	}
	i := frame - g.base
	n := i / (2 * testGOP)
	if i < 0 || n >= len(g.muts) {
		return nil
	}
	off := testGOP / 2
	if g.key[n] {
		off = 0
	}
	if i%(2*testGOP) != off {
		return nil
	}
	return g.muts[n]
}

type readResult struct {
	res testmedia.Result
	err error
}

// readAcross reads the stream over RTMP from before the first mutation to
// two GOPs after the last of n.
func (g *gopSchedule) readAcross(t *testing.T, wn *webrtcNode, key string, n int) readResult {
	t.Helper()
	across := make(chan readResult, 1)
	go func() {
		res, err := testmedia.Read(t.Context(), wn.RTMPURL(key), time.Duration((2*n+4)*testGOP)*40*time.Millisecond)
		across <- readResult{res, err}
	}()
	testmedia.Eventually(t, 10*time.Second, "RTMP player attached", func() bool { return wn.Hub.Stream(key).ReaderCount() > 0 })
	close(g.start)
	return <-across
}

// TestWHIPMalformedRTP: a WHIP publisher (pion) sends real H.264 and one
// bad packet or frame every other GOP: every kind in whipMutations. The session lives on; an RTMP
// player reading across the bad packets gets frames that decode without
// errors and no gap longer than one GOP; one reading after them gets a
// clean stream; the node's log counts the drops by reason.
func TestWHIPMalformedRTP(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	key := "live/badrtp"
	var muts []mutation
	var keys []bool
	for _, m := range whipMutations {
		muts, keys = append(muts, m.m), append(keys, m.key)
	}
	sched := newGOPSchedule(muts, keys)
	wn, loc := whipSession(t, key, sched.mutate)
	r := sched.readAcross(t, wn, key, len(muts))
	if r.err != nil {
		t.Fatal(r.err)
	}
	gop := (testGOP+1)*40*time.Millisecond + 20*time.Millisecond // half a frame for the DTS rounding
	// a broken keyframe costs its GOP: testGOP frames missing
	if r.res.VideoCodec != "h264" || r.res.Width != 320 || r.res.DecodeErrors != "" || r.res.NonMonotonic != 0 || !r.res.FirstKey ||
		r.res.VideoFrames < len(muts)*testGOP || r.res.MaxVideoStep > gop {
		t.Fatalf("RTMP across the bad packets: %+v", r.res)
	}
	t.Logf("RTMP across the bad packets: %+v", r.res)
	if p, ok := wn.Hub.Stream(key).Publisher(); !ok || p.Protocol != "whip" || wn.s.SessionCount() != 1 {
		t.Fatalf("publisher %+v ok %v sessions %d after the bad packets", p, ok, wn.s.SessionCount())
	}
	res, err := testmedia.Read(t.Context(), wn.RTMPURL(key), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("RTMP after them: %+v", res)
	if res.DecodeErrors != "" || res.NonMonotonic != 0 || res.VideoFrames < 60 || res.MaxVideoStep > 50*time.Millisecond {
		t.Fatalf("RTMP after the bad packets: %+v", res)
	}
	if st, body := webrtcpeer.Do(t, http.MethodDelete, wn.FLVBase()+loc, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d %s", st, body)
	}
	reasons := []string{"bad_padding", "payload_type", "broken_frame", "waiting_keyframe", "sequence_restarts"}
	testmedia.Eventually(t, 10*time.Second, "drop totals logged at the end", func() bool {
		logs := wn.log.String()
		for _, r := range reasons {
			if !strings.Contains(logs, `"`+r+`":`) {
				return false
			}
		}
		return true
	})
	logs := wn.log.String()
	if strings.Contains(logs, "video track ended") || strings.Contains(logs, `"publish:`) {
		t.Errorf("the session ended on bad input:\n%s", logs)
	}
}

// skip loses packets [from, to) of a frame (clipped to it): their
// sequence numbers are taken and never sent, as on a lossy path (the
// client never had them, so a NACK brings nothing).
func skip(from, to int) mutation {
	return func(pkts []*rtp.Packet, _ uint32, _ uint16) []outPkt {
		out := clean(pkts)
		for i := max(from, 0); i < min(to, len(out)); i++ {
			out[i].skip = true
		}
		return out
	}
}

// livePlayer is ffmpeg playing a stream over RTMP: it reports each video
// packet's PTS as it comes (framecrc on a pipe) and keeps a copy to decode.
type livePlayer struct {
	cmd  *exec.Cmd
	file string
	done chan struct{}
	mu   sync.Mutex
	pts  []int64 // ms
}

func startPlayer(t *testing.T, url string) *livePlayer {
	t.Helper()
	p := &livePlayer{file: filepath.Join(t.TempDir(), "play.nut"), done: make(chan struct{})}
	p.cmd = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rw_timeout", "20000000", "-i", url,
		"-map", "0:v", "-c", "copy", "-flush_packets", "1", "-f", "framecrc", "pipe:1",
		"-map", "0:v", "-c", "copy", "-f", "nut", "-y", p.file)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// stream, dts, pts, duration, size, crc
			f := strings.Split(sc.Text(), ",")
			if len(f) < 3 || strings.HasPrefix(f[0], "#") || strings.TrimSpace(f[0]) != "0" {
				continue
			}
			if v, err := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64); err == nil {
				p.mu.Lock()
				p.pts = append(p.pts, v)
				p.mu.Unlock()
			}
		}
		p.cmd.Wait()
	}()
	return p
}

// tail returns the last n PTS received.
func (p *livePlayer) tail(n int) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pts[max(len(p.pts)-n, 0):])
}

// stop ends the player (SIGINT: ffmpeg ends at its next packet and
// writes its files out) and decodes what it kept.
func (p *livePlayer) stop(t *testing.T) testmedia.Result {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the player did not stop on SIGINT")
	}
	res, err := testmedia.Analyze(t.Context(), p.file)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestWHIPPacketLoss: a WHIP publisher loses packets (never sent, so a
// NACK brings nothing back): one in a P frame, one in a keyframe's FU-A,
// a burst across frames, a whole keyframe, a whole P frame; one loss
// every other GOP. The RTMP player's frames decode without errors with no
// gap over one GOP. Then the publisher loses the first packet of the
// third frame of a GOP (frames 2..9 are dropped): the player has frames
// from after that loss before the publisher has sent maxLag more frames.
// The frame builder used to hold a frame behind a lost packet until its
// 512-packet window filled, about 170 frames of this stream.
func TestWHIPPacketLoss(t *testing.T) {
	testmedia.Need(t, "ffmpeg", "ffprobe")
	key := "live/loss"
	losses := []mutation{skip(1, 2), skip(1, 2), skip(0, 3), skip(0, 1000), skip(0, 1000)}
	keys := []bool{false, true, false, true, false}
	sched := newGOPSchedule(losses, keys)
	n := len(losses)
	var sent, lostAt atomic.Int64 // frames handed to the publisher; the last loss's frame
	lostAt.Store(-1)
	wn, _ := whipSession(t, key, func(frame int) mutation {
		sent.Store(int64(frame))
		m := sched.mutate(frame)
		if sched.base >= 0 && frame-sched.base-2*n*testGOP == 2 {
			lostAt.Store(int64(frame))
			return skip(0, 1)
		}
		return m
	})
	p := startPlayer(t, wn.RTMPURL(key))
	testmedia.Eventually(t, 10*time.Second, "RTMP player attached", func() bool { return wn.Hub.Stream(key).ReaderCount() > 0 })
	close(sched.start)
	// at the player the last loss is the one step of 9 frames (the losses
	// of the schedule make steps of 6 or 11)
	var lag int64
	testmedia.Eventually(t, 60*time.Second, "a frame after the last loss at the player", func() bool {
		pts := p.tail(1 << 20)
		for i := 1; i+1 < len(pts); i++ {
			if pts[i]-pts[i-1] == 9*40 {
				lag = sent.Load() - lostAt.Load()
				return true
			}
		}
		return false
	})
	// the next keyframe (8 frames on), and the player's own latency: what
	// ffmpeg read while probing stays buffered, a second or two
	const maxLag = 100
	t.Logf("frames after the last loss at the player when %d more were sent (limit %d)", lag, maxLag)
	if lostAt.Load() < 0 || lag > maxLag {
		t.Errorf("frames after the loss reached the player only after %d more frames (limit %d)", lag, maxLag)
	}
	res := p.stop(t)
	t.Logf("RTMP player: %+v", res)
	gop := (testGOP+1)*40*time.Millisecond + 20*time.Millisecond
	if res.VideoCodec != "h264" || res.DecodeErrors != "" || res.NonMonotonic != 0 || !res.FirstKey ||
		res.VideoFrames < n*testGOP || res.MaxVideoStep > gop {
		t.Fatalf("RTMP player: %+v", res)
	}
	if !strings.Contains(wn.log.String(), `"lost":`) {
		t.Errorf("no lost packets counted in the log:\n%s", wn.log.String())
	}
}
