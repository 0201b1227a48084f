package mpegts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/media/unit"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readFLV returns the tags of an FLV file as FLV-lane packets.
func readFLV(t testing.TB, b []byte) []*unit.Packet {
	t.Helper()
	if len(b) < 13 || string(b[:3]) != "FLV" {
		t.Fatal("not an FLV file")
	}
	b = b[binary.BigEndian.Uint32(b[5:9])+4:]
	var out []*unit.Packet
	for len(b) >= 15 {
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := int64(b[4])<<16 | int64(b[5])<<8 | int64(b[6]) | int64(b[7])<<24
		body := b[11 : 11+n]
		p := &unit.Packet{Kind: unit.Kind(b[0] & 0x1f), Time: ts, Payload: body}
		switch p.Kind {
		case unit.KindVideo:
			v, _ := unit.ParseVideoTag(body)
			p.Header, p.Keyframe = v.Header, v.Keyframe && !v.Header
		case unit.KindAudio:
			a, _ := unit.ParseAudioTag(body)
			p.Header = a.Header
		case unit.KindData:
			p.Header = true
		}
		out = append(out, p)
		b = b[11+n+4:]
	}
	return out
}

type demuxed struct {
	flv []*unit.Packet
	ts  []*unit.Packet
}

func (d *demuxed) emit(p *unit.Packet) {
	if p.Kind == unit.KindTS {
		d.ts = append(d.ts, p)
	} else {
		d.flv = append(d.flv, p)
	}
}

func (d *demuxed) count(kind unit.Kind, header bool) (n int) {
	for _, p := range d.flv {
		if p.Kind == kind && p.Header == header {
			n++
		}
	}
	return n
}

// feedChunks gives b to dm in chunks of chunk bytes, as reads from a
// socket would, and returns the first error.
func feedChunks(dm *Demuxer, b []byte, chunk int, emit func(*unit.Packet)) error {
	for len(b) > 0 {
		n := min(chunk, len(b))
		if err := dm.Feed(b[:n], emit); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func demuxAll(t testing.TB, b []byte, chunk int) *demuxed {
	t.Helper()
	var out demuxed
	dm := NewDemuxer()
	if err := feedChunks(dm, b, chunk, out.emit); err != nil {
		t.Fatalf("Feed: %v", err)
	}
	if err := dm.Flush(out.emit); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return &out
}

// ffprobeFrames returns ffprobe's decoded frame counts per codec name.
func ffprobeFrames(t *testing.T, path string) map[string]string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,nb_read_frames,width,height", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		m[f[0]] = strings.Join(f[1:], ",")
	}
	return m
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
}

func TestDemuxFile(t *testing.T) {
	cases := []struct {
		file          string
		video         string
		frames, keys  int
		width, height int
	}{
		{"h264_aac.ts", "H264", 50, 2, 160, 90},
		{"h265_aac.ts", "H265", 25, 1, 160, 90},
	}
	for _, c := range cases {
		for _, chunk := range []int{1316, 188, 1000, 7, 65536} {
			t.Run(c.file+"/chunk"+itoa(chunk), func(t *testing.T) {
				in := readFile(t, c.file)
				out := demuxAll(t, in, chunk)
				if n := out.count(unit.KindVideo, false); n != c.frames {
					t.Errorf("video frames: got %d, want %d", n, c.frames)
				}
				if n := out.count(unit.KindVideo, true); n != 1 {
					t.Errorf("video sequence headers: got %d, want 1", n)
				}
				if n := out.count(unit.KindAudio, true); n != 1 {
					t.Errorf("audio sequence headers: got %d, want 1", n)
				}
				var ci unit.CodecInfo
				keys := 0
				var lastV int64 = -1
				for _, p := range out.flv {
					if p.Header {
						ci, _ = unit.ParseHeader(p, ci)
					}
					if p.Kind == unit.KindVideo && !p.Header {
						if p.Keyframe {
							keys++
						}
						if p.Time <= lastV {
							t.Errorf("video DTS not increasing: %d after %d", p.Time, lastV)
						}
						lastV = p.Time
					}
				}
				if ci.Video != c.video || ci.Width != c.width || ci.Height != c.height || ci.Audio != "AAC" || ci.SampleRate == 0 {
					t.Errorf("codecs: got %+v", ci)
				}
				if keys != c.keys {
					t.Errorf("keyframes: got %d, want %d", keys, c.keys)
				}
				// TS lane: the input's packets, untouched, keyframe groups
				// starting on the video PUSI.
				tsKeys, headers, psiBytes := 0, 0, 0
				var lane []byte
				for _, p := range out.ts {
					if len(p.Payload)%PacketSize != 0 {
						t.Fatalf("TS lane packet of %d bytes", len(p.Payload))
					}
					if p.Header {
						headers++
						psiBytes += len(p.Payload)
						continue
					}
					if p.Keyframe {
						tsKeys++
						if p.Payload[1]&0x40 == 0 || int(p.Payload[1]&0x1f)<<8|int(p.Payload[2]) != 0x100 {
							t.Errorf("keyframe lane packet does not start with the video PES")
						}
					}
					lane = append(lane, p.Payload...)
				}
				if tsKeys != c.keys || headers == 0 {
					t.Errorf("TS lane: %d keyframes (want %d), %d headers", tsKeys, c.keys, headers)
				}
				for i := 0; i < len(lane); i += PacketSize {
					if !bytes.Contains(in, lane[i:i+PacketSize]) {
						t.Fatalf("TS lane packet %d is not an input packet", i/PacketSize)
					}
				}
				if n := len(lane) + psiBytes; n < len(in)-2*PacketSize {
					t.Errorf("TS lane carries %d of %d bytes", n, len(in))
				}
			})
		}
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// frameKey is what a round trip must preserve.
type frameKey struct {
	kind    unit.Kind
	time    int64
	key     bool
	header  bool
	payload string
}

func keys(ps []*unit.Packet, kind unit.Kind) []frameKey {
	var out []frameKey
	for _, p := range ps {
		if p.Kind != kind {
			continue
		}
		out = append(out, frameKey{p.Kind, p.Time, p.Keyframe, p.Header, string(p.Payload)})
	}
	return out
}

func muxAll(t testing.TB, in []*unit.Packet) []byte {
	t.Helper()
	m := NewMuxer()
	var ts []byte
	for _, p := range in {
		if err := m.Remux(p, func(o *unit.Packet) { ts = append(ts, o.Payload...) }); err != nil {
			t.Fatalf("Remux: %v", err)
		}
	}
	return ts
}

func TestRoundTrip(t *testing.T) {
	for _, file := range []string{"h264_aac.ts", "h265_aac.ts"} {
		t.Run(file, func(t *testing.T) {
			first := demuxAll(t, readFile(t, file), 1316)
			ts := muxAll(t, first.flv)
			second := demuxAll(t, ts, 1316)
			for _, kind := range []unit.Kind{unit.KindVideo, unit.KindAudio} {
				a, b := keys(first.flv, kind), keys(second.flv, kind)
				if len(a) != len(b) {
					t.Fatalf("round trip %v: %d packets in, %d out", kind, len(a), len(b))
				}
				for i := range a {
					if a[i] != b[i] {
						t.Fatalf("%v packet %d differs: time %d/%d key %v/%v header %v/%v len %d/%d",
							kind, i, a[i].time, b[i].time, a[i].key, b[i].key, a[i].header, b[i].header, len(a[i].payload), len(b[i].payload))
					}
				}
			}
		})
	}
}

func TestMuxPlaysInFFmpeg(t *testing.T) {
	needFFmpeg(t)
	flv := readFLV(t, readFile(t, "h264_aac.flv"))
	h265 := demuxAll(t, readFile(t, "h265_aac.ts"), 1316).flv
	cases := []struct {
		name  string
		in    []*unit.Packet
		video string
		want  string
	}{
		{"h264 from ffmpeg flv", flv, "h264", "160,90,50"},
		{"hevc enhanced rtmp", h265, "hevc", "160,90,25"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.ts")
			if err := os.WriteFile(path, muxAll(t, c.in), 0o644); err != nil {
				t.Fatal(err)
			}
			got := ffprobeFrames(t, path)
			if got[c.video] != c.want {
				t.Errorf("ffprobe %s: got %q, want %q (all: %v)", c.video, got[c.video], c.want, got)
			}
			if _, ok := got["aac"]; !ok {
				t.Errorf("ffprobe: no aac stream: %v", got)
			}
			out, _ := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
			if len(out) > 0 {
				t.Errorf("ffmpeg decode errors:\n%s", out)
			}
			if n := ccErrors(mustRead(t, path)); n != 0 {
				t.Errorf("%d continuity errors", n)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ccErrors counts continuity counter errors on every PID but null.
func ccErrors(b []byte) int {
	last := map[int]int{}
	n := 0
	for ; len(b) >= PacketSize; b = b[PacketSize:] {
		pid := int(b[1]&0x1f)<<8 | int(b[2])
		if pid == pidNull || b[3]&0x10 == 0 {
			continue
		}
		cc := int(b[3] & 0x0f)
		if l, ok := last[pid]; ok && cc != (l+1)&0x0f {
			n++
		}
		last[pid] = cc
	}
	return n
}

func TestMuxWrapsTimestamps(t *testing.T) {
	// An RTMP timeline that passes 2^33/90 ms (the 33-bit PES wrap) and the
	// 32-bit ms RTMP wrap: the demuxed timeline stays continuous.
	flv := readFLV(t, readFile(t, "h264_aac.flv"))
	for _, base := range []int64{(1<<33)/90 - 1000, 1<<32 - 1000} {
		t.Run(fmtInt(int(base)), func(t *testing.T) {
			var shifted []*unit.Packet
			for _, p := range flv {
				shifted = append(shifted, &unit.Packet{Kind: p.Kind, Time: p.Time + base, Keyframe: p.Keyframe, Header: p.Header, Payload: p.Payload})
			}
			out := demuxAll(t, muxAll(t, shifted), 1316)
			var prev int64 = -1
			n := 0
			for _, p := range out.flv {
				if p.Kind != unit.KindVideo || p.Header {
					continue
				}
				n++
				if prev >= 0 && (p.Time <= prev || p.Time-prev > 100) {
					t.Fatalf("timeline jumps from %d to %d", prev, p.Time)
				}
				prev = p.Time
			}
			if n != 50 {
				t.Errorf("got %d video frames, want 50", n)
			}
		})
	}
}

func TestDemuxBadInput(t *testing.T) {
	good := readFile(t, "h264_aac.ts")
	rnd := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	// PAT/PMT with a broken CRC everywhere
	badPSI := bytes.Clone(good)
	for i := 0; i+PacketSize <= len(badPSI); i += PacketSize {
		pid := int(badPSI[i+1]&0x1f)<<8 | int(badPSI[i+2])
		if pid == 0 || pid == 0x1000 {
			badPSI[i+20] ^= 0xFF
		}
	}
	// PES start codes broken
	badPES := bytes.Clone(good)
	for i := 0; i+PacketSize <= len(badPES); i += PacketSize {
		pid := int(badPES[i+1]&0x1f)<<8 | int(badPES[i+2])
		if badPES[i+1]&0x40 != 0 && (pid == 0x100 || pid == 0x101) {
			off := 4
			if badPES[i+3]&0x20 != 0 {
				off += 1 + int(badPES[i+4])
			}
			badPES[i+off+2] = 0x07
		}
	}
	huge := bytes.Repeat(badPSI, 4<<20/len(badPSI)+1)
	cases := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"random bytes", rnd, ErrNotTS},
		{"text", []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400)), ErrNotTS},
		{"broken PAT and PMT", huge, ErrNoProgram},
		{"broken PES start codes", bytes.Repeat(badPES, 3), ErrTooBroken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dm := NewDemuxer()
			var out demuxed
			err := feedChunks(dm, c.in, 1316, out.emit)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v (stats %+v)", err, c.wantErr, dm.Stats())
			}
			if n := out.count(unit.KindVideo, false); n != 0 {
				t.Errorf("%d video frames out of broken input", n)
			}
		})
	}
	t.Run("garbage between good packets is skipped", func(t *testing.T) {
		var in []byte
		for i := 0; i+PacketSize <= len(good); i += PacketSize {
			in = append(in, good[i:i+PacketSize]...)
			if i%(PacketSize*40) == 0 {
				in = append(in, "junk"...)
			}
		}
		out := demuxAll(t, in, 1316)
		if n := out.count(unit.KindVideo, false); n < 40 {
			t.Errorf("got %d video frames, want most of 50", n)
		}
	})
}

func FuzzDemux(f *testing.F) {
	for _, name := range []string{"h264_aac.ts", "h265_aac.ts"} {
		b := readFile(f, name)
		for i := 0; i+1316 <= len(b) && i < 20*1316; i += 4 * 1316 {
			f.Add(b[i : i+1316])
		}
	}
	f.Add([]byte("\x47\x40\x00\x10\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dm := NewDemuxer()
		emit := func(p *unit.Packet) {
			if p.Kind == unit.KindTS && len(p.Payload)%PacketSize != 0 {
				t.Fatalf("TS lane packet of %d bytes", len(p.Payload))
			}
		}
		// the same bytes twice, the second time as a continuation
		_ = dm.Feed(b, emit)
		_ = dm.Feed(b, emit)
		_ = dm.Flush(emit)
	})
}

func FuzzMux(f *testing.F) {
	for _, p := range readFLV(f, readFile(f, "h264_aac.flv"))[:12] {
		f.Add(byte(p.Kind), p.Payload)
	}
	for _, p := range demuxAll(f, readFile(f, "h265_aac.ts"), 1316).flv[:6] {
		f.Add(byte(p.Kind), p.Payload)
	}
	hdrs := readFLV(f, readFile(f, "h264_aac.flv"))[:3]
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		m := NewMuxer()
		emit := func(p *unit.Packet) {
			if len(p.Payload)%PacketSize != 0 {
				t.Fatalf("TS lane packet of %d bytes", len(p.Payload))
			}
		}
		for _, h := range hdrs {
			_ = m.Remux(h, emit)
		}
		_ = m.Remux(&unit.Packet{Kind: unit.Kind(kind), Time: 40, Payload: body}, emit)
		_ = m.Remux(&unit.Packet{Kind: unit.Kind(kind), Time: 40, Header: true, Payload: body}, emit)
		_ = m.Remux(&unit.Packet{Kind: unit.Kind(kind), Time: 80, Payload: body}, emit)
	})
}

func BenchmarkMux(b *testing.B) {
	in := readFLV(b, readFile(b, "h264_aac.flv"))
	m := NewMuxer()
	frames, bytesIn := 0, 0
	for _, p := range in {
		if !p.Header {
			frames++
			bytesIn += len(p.Payload)
		}
	}
	emit := func(*unit.Packet) {}
	b.ReportAllocs()
	b.SetBytes(int64(bytesIn))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range in {
			_ = m.Remux(p, emit)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), "ns/frame")
}

func BenchmarkDemux(b *testing.B) {
	in := readFile(b, "h264_aac.ts")
	frames := 0
	probe := demuxAll(b, in, 1316)
	frames = probe.count(unit.KindVideo, false) + probe.count(unit.KindAudio, false)
	benchDemux(b, in, frames, "ns/frame")
}

// benchDemux demuxes in, in 1316-byte reads, b.N times with a new Demuxer
// each time, and reports the time per one of its frames as metric.
func benchDemux(b *testing.B, in []byte, frames int, metric string) {
	emit := func(*unit.Packet) {}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dm := NewDemuxer()
		_ = feedChunks(dm, in, 1316, emit)
		_ = dm.Flush(emit)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), metric)
}
