package hostile

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/test/hostile/wire"
)

// TCPCase is one hostile TCP session: handshake says whether to do a
// valid RTMP handshake first; then body is written, the write side is
// closed and the answer read until EOF or a short deadline.
type TCPCase struct {
	Kind      string
	Handshake bool
	Body      []byte
	Stall     bool // keep the connection open (unwritten end) until the deadline
}

// TCPFuzz runs cases against one TCP listener with a few workers.
type TCPFuzz struct {
	Seed    uint64
	Target  string
	Workers int
	Case    func(r *rand.Rand) TCPCase

	Done     atomic.Int64
	Answered atomic.Int64 // sessions that got at least one byte back

	mu   sync.Mutex
	last []string
}

// Run runs cases from..to-1 (case i from wire.NewRand(Seed, i)); it stops
// early when alive reports false and returns the number of cases run.
func (f *TCPFuzz) Run(from, to int, alive func() bool) int {
	var next atomic.Int64
	next.Store(int64(from))
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for range max(f.Workers, 1) {
		wg.Go(func() {
			for !stopped.Load() {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				c := f.Case(wire.NewRand(f.Seed, uint64(i)))
				f.note(fmt.Sprintf("#%d %s (%d bytes)", i, c.Kind, len(c.Body)))
				f.session(c)
				f.Done.Add(1)
				if i%50 == 0 && !alive() {
					stopped.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return int(f.Done.Load())
}

func (f *TCPFuzz) note(s string) {
	f.mu.Lock()
	f.last = append(f.last, s)
	if len(f.last) > 32 {
		f.last = f.last[1:]
	}
	f.mu.Unlock()
}

// Last lists the last cases started.
func (f *TCPFuzz) Last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.last, "\n")
}

func (f *TCPFuzz) session(c TCPCase) {
	conn, err := net.DialTimeout("tcp", f.Target, 2*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if c.Handshake {
		if _, err := conn.Write(wire.RTMPC0C1(make([]byte, 1528))); err != nil {
			return
		}
		s := make([]byte, 1+1536+1536)
		if _, err := io.ReadFull(conn, s); err != nil {
			return
		}
		f.Answered.Add(1)
		if _, err := conn.Write(s[1 : 1+1536]); err != nil { // C2 echoes S1
			return
		}
	}
	conn.Write(c.Body)
	if c.Stall {
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	} else {
		conn.(*net.TCPConn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	}
	buf := make([]byte, 32<<10)
	got := false
	for {
		n, err := conn.Read(buf)
		if n > 0 && !got && !c.Handshake {
			got = true
			f.Answered.Add(1)
		}
		if err != nil {
			return
		}
	}
}

// RTMPCase builds one hostile RTMP session.
func RTMPCase(r *rand.Rand) TCPCase {
	switch n := r.IntN(100); {
	case n < 8:
		return TCPCase{Kind: "garbage handshake", Body: wire.RandBytes(r, r.IntN(4000))}
	case n < 12:
		c := wire.RTMPC0C1(wire.RandBytes(r, 1528))
		c[0] = []byte{0, 6, 0xff, 31}[r.IntN(4)]
		return TCPCase{Kind: fmt.Sprintf("handshake version %d", c[0]), Body: c}
	case n < 16:
		c := wire.RTMPC0C1(wire.RandBytes(r, 1528))
		return TCPCase{Kind: "truncated C1", Body: c[:r.IntN(len(c))], Stall: r.IntN(2) == 0}
	case n < 25:
		return TCPCase{Kind: "huge or odd chunk headers", Handshake: true, Body: hugeChunks(r)}
	case n < 32:
		return TCPCase{Kind: "AMF bombs", Handshake: true, Body: amfBomb(r)}
	default:
		body := rtmpSession(r)
		return TCPCase{Kind: "mutated session", Handshake: true, Body: wire.Mutate(r, body, 1+r.IntN(12))}
	}
}

// rtmpSession is a plausible publish or play session as chunk bytes.
func rtmpSession(r *rand.Rand) []byte {
	key := fmt.Sprintf("h%d", r.IntN(1000))
	size := []int{128, 128, 4096, 60000}[r.IntN(4)]
	var b []byte
	if size != 128 {
		b = append(b, wire.RTMPMsg{CSID: 2, Type: wire.RTMPSetChunkSize, Payload: wire.U32s(uint32(size))}.Chunk(128)...)
	}
	msg := func(m wire.RTMPMsg) { b = append(b, m.Chunk(size)...) }
	msg(wire.RTMPMsg{CSID: 3, Type: wire.RTMPCommandAMF0, Payload: wire.Connect("hostile", "rtmp://127.0.0.1/hostile")})
	msg(wire.RTMPMsg{CSID: 2, Type: wire.RTMPWindowAck, Payload: wire.U32s(2500000)})
	msg(wire.RTMPMsg{CSID: 3, Type: wire.RTMPCommandAMF0, Payload: wire.AMF0("createStream", 2, wire.AMFNull{})})
	if r.IntN(2) == 0 {
		msg(wire.RTMPMsg{CSID: 8, Type: wire.RTMPCommandAMF0, StreamID: 1, Payload: wire.AMF0("play", 3, wire.AMFNull{}, []string{key, "canary"}[r.IntN(2)])})
		return b
	}
	msg(wire.RTMPMsg{CSID: 8, Type: wire.RTMPCommandAMF0, StreamID: 1, Payload: wire.AMF0("publish", 3, wire.AMFNull{}, key, "live")})
	msg(wire.RTMPMsg{CSID: 4, Type: wire.RTMPDataAMF0, StreamID: 1, Payload: wire.AMF0("@setDataFrame", "onMetaData",
		wire.AMFECMA{Entries: map[string]any{"width": 320, "height": 180, "videocodecid": 7, "audiocodecid": 10}})})
	msg(wire.RTMPMsg{CSID: 6, Type: wire.RTMPVideo, StreamID: 1, Payload: wire.VideoConfig()})
	msg(wire.RTMPMsg{CSID: 4, Type: wire.RTMPAudio, StreamID: 1, Payload: []byte{0xaf, 0, 0x11, 0x90}})
	for i := range 1 + r.IntN(10) {
		nal := wire.RandBytes(r, 4+r.IntN(3000))
		frame := append([]byte{0x17, 1, 0, 0, 0, 0, 0, 0, byte(len(nal))}, nal...)
		if i > 0 {
			frame[0] = 0x27
		}
		msg(wire.RTMPMsg{CSID: 6, Type: wire.RTMPVideo, StreamID: 1, Timestamp: uint32(40 * i), Payload: frame})
	}
	return b
}

func hugeChunks(r *rand.Rand) []byte {
	switch r.IntN(6) {
	case 0: // a message that claims 16 MB
		return wire.RTMPMsg{CSID: 3, Type: wire.RTMPCommandAMF0, Payload: wire.Connect("a", "b"), Length: 0xffffff}.Chunk(128)
	case 1: // chunk size 0, then a command
		b := wire.RTMPMsg{CSID: 2, Type: wire.RTMPSetChunkSize, Payload: wire.U32s(0)}.Chunk(128)
		return append(b, wire.RTMPMsg{CSID: 3, Type: wire.RTMPCommandAMF0, Payload: wire.Connect("a", "b")}.Chunk(128)...)
	case 2: // chunk size 2^31-1 then a 16 MB message of which little is sent
		b := wire.RTMPMsg{CSID: 2, Type: wire.RTMPSetChunkSize, Payload: wire.U32s(0x7fffffff)}.Chunk(128)
		return append(b, wire.RTMPMsg{CSID: 6, Type: wire.RTMPVideo, StreamID: 1, Payload: wire.RandBytes(r, 1000), Length: 0xffffff}.Chunk(0x7fffffff)...)
	case 3: // many chunk streams (three-byte ids), each with a partial message
		var b []byte
		for i := range 300 {
			m := wire.RTMPMsg{CSID: uint32(320 + i*200), Type: wire.RTMPVideo, StreamID: 1, Payload: wire.RandBytes(r, 64), Length: 100000}
			b = append(b, m.Chunk(128)[:20]...)
		}
		return b
	case 4: // a type 3 chunk with no previous header, then a type 1 and type 2
		return []byte{0xc3, 1, 2, 3, 0x43, 0, 0, 1, 0, 0, 5, 20, 0x83, 0, 0, 1, 9, 9}
	default: // extended timestamps everywhere and an abort for an unknown stream
		b := wire.RTMPMsg{CSID: 2, Type: wire.RTMPAbort, Payload: wire.U32s(12345)}.Chunk(128)
		return append(b, wire.RTMPMsg{CSID: 5, Type: wire.RTMPVideo, StreamID: 1, Timestamp: 0xffffffff, Payload: wire.RandBytes(r, 400)}.Chunk(128)...)
	}
}

func amfBomb(r *rand.Rand) []byte {
	var cmd []byte
	switch r.IntN(5) {
	case 0: // 10 000 nested objects
		cmd = wire.AMF0("connect", 1)
		for range 10000 {
			cmd = append(cmd, 0x03, 0, 1, 'a')
		}
	case 1: // a string longer than the message
		cmd = append(wire.AMF0("connect", 1), 0x02, 0xff, 0xff, 'x')
	case 2: // an ECMA array claiming 4 billion entries
		cmd = wire.AMF0("connect", 1, wire.AMFECMA{Count: 0xffffffff})
	case 3: // a long string of 16 MB claimed, 10 bytes sent
		cmd = append(wire.AMF0("connect", 1), 0x0c, 0, 0xff, 0xff, 0xff, 'x')
	default: // unknown markers and a strict array claiming too much
		cmd = append(wire.AMF0("connect", 1), 0x0d, 0x0e, 0x11, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x05)
	}
	return wire.RTMPMsg{CSID: 3, Type: wire.RTMPCommandAMF0, Payload: cmd}.Chunk(128)
}

// FLVCase builds one hostile HTTP-FLV session.
func FLVCase(r *rand.Rand) TCPCase {
	valid := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hostile\r\nAccept: */*\r\n\r\n"
	}
	switch n := r.IntN(100); {
	case n < 10:
		return TCPCase{Kind: "garbage", Body: wire.RandBytes(r, r.IntN(3000))}
	case n < 20:
		s := valid("/live/canary.flv")
		return TCPCase{Kind: "truncated request", Body: []byte(s[:r.IntN(len(s))]), Stall: r.IntN(2) == 0}
	case n < 25:
		return TCPCase{Kind: "huge header", Body: []byte("GET /live/canary.flv HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n")}
	case n < 30:
		var b strings.Builder
		b.WriteString("GET /live/canary.flv HTTP/1.1\r\nHost: x\r\n")
		for i := range 5000 {
			fmt.Fprintf(&b, "X-%d: %d\r\n", i, i)
		}
		b.WriteString("\r\n")
		return TCPCase{Kind: "5000 headers", Body: []byte(b.String())}
	case n < 40:
		paths := []string{"/" + strings.Repeat("a/", 20000) + "x.flv", "/../../../etc/passwd.flv", "/live/%00.flv", "/live/canary.flv?token=" + strings.Repeat("9", 5000),
			"/live/canary.flv%", "/.flv", "/live/.flv", "//canary.flv", "/live/canary.flv/../../x.flv", "*",
			// HLS on the same listener: bad and blocking reloads, unknown parts, missing streams
			"/live/canary/index.m3u8", "/live/canary/video1_stream.m3u8?_HLS_msn=18446744073709551616&_HLS_part=1",
			"/live/canary/video1_stream.m3u8?_HLS_msn=1&_HLS_part=99999999", "/live/canary/ab_video1_part99999999999.mp4",
			"/live/canary/a_b_c_part1.mp4", "/live/nosuch/index.m3u8", "/live/canary/../x/plain.m3u8", "/x/index.m3u8", "/live/canary/"}
		return TCPCase{Kind: "odd path", Body: []byte(valid(paths[r.IntN(len(paths))]))}
	case n < 45:
		return TCPCase{Kind: "bad chunked body", Body: []byte("POST /live/canary.flv HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n")}
	case n < 50:
		return TCPCase{Kind: "pipelined", Body: []byte(strings.Repeat(valid("/live/h1.flv"), 50))}
	case n < 55:
		return TCPCase{Kind: "player", Body: []byte(valid("/live/canary.flv"))}
	default:
		methods := []string{"GET", "HEAD", "POST", "OPTIONS", "PRI", "CONNECT"}
		s := methods[r.IntN(len(methods))] + " /live/canary.flv HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 10\r\n\r\n0123456789"
		return TCPCase{Kind: "mutated request", Body: wire.Mutate(r, []byte(s), 1+r.IntN(8))}
	}
}
