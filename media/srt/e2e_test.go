package srt

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

const pass32 = "relaymesh-e2e-secret-32"

func hubCfg() media.HubConfig {
	c := media.DefaultHubConfig()
	c.ReconnectGrace = 0
	return c
}

// checkRead asserts that a reader's TS file holds what the publisher sent
// from the reader's join point on.
func checkRead(t *testing.T, name, got, sent, vcodec string) {
	t.Helper()
	b, err := os.ReadFile(got)
	if err != nil || len(b) == 0 {
		t.Fatalf("%s: no output (%v)", name, err)
	}
	if n, pk := ccErrors(b); n != 0 || pk == 0 {
		t.Errorf("%s: %d continuity errors in %d packets", name, n, pk)
	}
	if e := decodeErrors(t, got); e != "" {
		t.Errorf("%s: decode errors:\n%s", name, e)
	}
	g, s := probeFile(t, got), probeFile(t, sent)
	if g["video"] == nil || g["audio"] == nil {
		t.Fatalf("%s: streams %v", name, g)
	}
	if g["video"].codec != vcodec || g["audio"].codec != "aac" || g["video"].width != 640 || g["video"].height != 360 {
		t.Errorf("%s: got %s %dx%d + %s", name, g["video"].codec, g["video"].width, g["video"].height, g["audio"].codec)
	}
	for _, kind := range []string{"video", "audio"} {
		gp, sp := g[kind].pts, s[kind].pts
		if len(gp) < 10 {
			t.Fatalf("%s: only %d %s packets", name, len(gp), kind)
		}
		// SRT live mode loses the tail when the publisher hangs up (the
		// receive buffer is flushed): count within the received range and
		// bound the tail.
		want := countRange(sp, gp[0], gp[len(gp)-1])
		if math.Abs(float64(len(gp)-want)) > 2 {
			t.Errorf("%s: %d %s packets from %.3fs to %.3fs, the publisher sent %d", name, len(gp), kind, gp[0], gp[len(gp)-1], want)
		}
		if tail := sp[len(sp)-1] - gp[len(gp)-1]; tail > 2 {
			t.Errorf("%s: the last %.3fs of %s are missing", name, tail, kind)
		}
	}
}

func TestPublishAndRead(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe", "srt-live-transmit")
	cases := []struct {
		name   string
		cfg    Config
		pubQ   string
		readQ  string
		vcodec string
	}{
		{"plain h264", Config{}, "", "", "h264"},
		{"aes-256 h264", Config{PublishPassphrase: pass32, ReadPassphrase: pass32 + "-r"},
			"&pbkeylen=32&passphrase=" + pass32, "&pbkeylen=32&passphrase=" + pass32 + "-r", "h264"},
		{"plain hevc", Config{}, "", "", "hevc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := startServer(t, c.cfg, hubCfg())
			sent := tmp(t, "sent.ts")
			pub := start(t, "", "ffmpeg", publishArgs(ts.url+"?streamid=publish:live/t"+c.pubQ, sent, c.vcodec, 8)...)
			waitFor(t, 15*time.Second, "the stream to go live", func() bool {
				s := ts.hub.Stream("live/t")
				return s != nil && s.Codecs().Video != "" && s.Codecs().Audio != ""
			})
			out1, out2 := tmp(t, "ffmpeg.ts"), tmp(t, "slt.ts")
			rd := start(t, "", "ffmpeg", "-hide_banner", "-v", "error", "-i", ts.url+"?streamid=read:live/t"+c.readQ, "-copyts", "-muxdelay", "0", "-muxpreload", "0", "-c", "copy", "-f", "mpegts", out1)
			slt := start(t, out2, "srt-live-transmit", "-q", "-a:no", ts.url+"?streamid=read:live/t"+c.readQ, "file://con")
			if err := pub.wait(t, 30*time.Second); err != nil {
				t.Fatalf("publisher: %v\n%s", err, pub.stderr.String())
			}
			_ = rd.wait(t, 20*time.Second)
			waitFor(t, 10*time.Second, "srt-live-transmit to see the end", func() bool {
				select {
				case err := <-slt.done:
					slt.done <- err
					return true
				default:
					return false
				}
			})
			checkRead(t, "ffmpeg reader", out1, sent, c.vcodec)
			checkRead(t, "srt-live-transmit reader", out2, sent, c.vcodec)
		})
	}
}

func TestSRTInFLVLaneOut(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	cases := []struct {
		vcodec, want string
	}{{"h264", "H264"}, {"hevc", "H265"}}
	for _, c := range cases {
		t.Run(c.vcodec, func(t *testing.T) {
			ts := startServer(t, Config{}, hubCfg())
			sent := tmp(t, "sent.ts")
			pub := start(t, "", "ffmpeg", publishArgs(ts.url+"?streamid=publish:live/f", sent, c.vcodec, 6)...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var r *media.Reader
			waitFor(t, 15*time.Second, "the stream to go live", func() bool {
				var err error
				r, err = ts.hub.Subscribe(ctx, "live/f", media.SubscribeOptions{Format: media.FormatFLV, Info: media.ReaderInfo{Protocol: "test"}})
				return err == nil
			})
			defer r.Close()
			var got []*unit.Packet
			buf := make([]*unit.Packet, 0, 64)
			for {
				pkts, err := r.Next(ctx, buf)
				got = append(got, pkts...)
				if err != nil {
					break
				}
			}
			if err := pub.wait(t, 30*time.Second); err != nil {
				t.Fatalf("publisher: %v\n%s", err, pub.stderr.String())
			}
			var ci unit.CodecInfo
			video := 0
			var first, last int64 = -1, 0
			for _, p := range got {
				if p.Header {
					ci, _ = unit.ParseHeader(p, ci)
				} else if p.Kind == unit.KindVideo {
					video++
					if first < 0 {
						first = p.Time
					}
					last = p.Time
				}
			}
			if ci.Video != c.want || ci.Width != 640 || ci.Height != 360 || ci.Audio != "AAC" {
				t.Errorf("codecs: %+v", ci)
			}
			s := probeFile(t, sent)
			want := countRange(s["video"].pts, float64(first)/1000, float64(last)/1000)
			if video < want-2 || video > want+2 {
				t.Errorf("FLV lane: %d video frames from %dms, the publisher sent %d", video, first, want)
			}
			if c.vcodec != "h264" {
				return // ffmpeg 5.1 cannot read Enhanced RTMP FLV files
			}
			flv := tmp(t, "out.flv")
			writeFLVFile(t, flv, got)
			g := probeFile(t, flv)
			if g["video"] == nil || g["video"].codec != "h264" || g["audio"] == nil || g["audio"].codec != "aac" {
				t.Fatalf("ffprobe of the FLV lane: %v", g)
			}
			if n := len(g["video"].pts); n != video {
				t.Errorf("ffprobe counts %d video frames in the FLV, the lane had %d", n, video)
			}
			if e := decodeErrors(t, flv); e != "" {
				t.Errorf("decode errors:\n%s", e)
			}
		})
	}
}

// readFLVFile returns the tags of an FLV file as FLV-lane packets.
func readFLVFile(t *testing.T, path string) []*unit.Packet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = b[int(b[5])<<24|int(b[6])<<16|int(b[7])<<8|int(b[8])+4:]
	var out []*unit.Packet
	for len(b) >= 15 {
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		p := &unit.Packet{Kind: unit.Kind(b[0] & 0x1f), Time: int64(b[4])<<16 | int64(b[5])<<8 | int64(b[6]) | int64(b[7])<<24, Payload: b[11 : 11+n]}
		switch p.Kind {
		case unit.KindVideo:
			v, _ := unit.ParseVideoTag(p.Payload)
			p.Header, p.Keyframe = v.Header, v.Keyframe && !v.Header
		case unit.KindAudio:
			a, _ := unit.ParseAudioTag(p.Payload)
			p.Header = a.Header
		default:
			p.Header = true
		}
		out = append(out, p)
		b = b[11+n+4:]
	}
	return out
}

func TestFLVInSRTOut(t *testing.T) {
	needTools(t, "ffmpeg", "ffprobe")
	src := tmp(t, "src.flv")
	if out, err := runCmd("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine", "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-c:a", "aac", "-f", "flv", src); err != nil {
		t.Fatalf("make flv: %v\n%s", err, out)
	}
	tags := readFLVFile(t, src)
	ts := startServer(t, Config{}, hubCfg())
	pub, err := ts.hub.Publish("live/r", media.PublisherInfo{Protocol: "rtmp", Remote: "test", Native: media.FormatFLV})
	if err != nil {
		t.Fatal(err)
	}
	// headers and the first second, then the reader joins, then the rest
	// at twice real time
	i := 0
	for ; i < len(tags) && tags[i].Time < 1000; i++ {
		if err := pub.Write(tags[i]); err != nil {
			t.Fatal(err)
		}
	}
	out := tmp(t, "out.ts")
	rd := start(t, "", "ffmpeg", "-hide_banner", "-v", "error", "-i", ts.url+"?streamid=read:live/r", "-c", "copy", "-f", "mpegts", out)
	waitFor(t, 10*time.Second, "the SRT reader", func() bool { return ts.hub.Stream("live/r").ReaderCount() == 1 })
	t0 := time.Now()
	for ; i < len(tags); i++ {
		if d := time.Duration(tags[i].Time-1000)*time.Millisecond/2 - time.Since(t0); d > 0 {
			time.Sleep(d)
		}
		if err := pub.Write(tags[i]); err != nil {
			t.Fatal(err)
		}
	}
	pub.Close()
	_ = rd.wait(t, 20*time.Second)
	b, _ := os.ReadFile(out)
	if n, pk := ccErrors(b); n != 0 || pk == 0 {
		t.Errorf("%d continuity errors in %d packets", n, pk)
	}
	if e := decodeErrors(t, out); e != "" {
		t.Errorf("decode errors:\n%s", e)
	}
	g := probeFile(t, out)
	if g["video"] == nil || g["video"].codec != "h264" || g["video"].width != 640 || g["audio"] == nil || g["audio"].codec != "aac" {
		t.Fatalf("streams: %+v", g)
	}
	// the reader joined at the keyframe at 0s (GOP cache): every frame
	if n := len(g["video"].pts); n < 148 || n > 150 {
		t.Logf("server log:\n%s", ts.logs.String())
		t.Errorf("got %d video frames, published 150", n)
	}
}

func runCmd(name string, args ...string) (string, error) {
	out, err := execCommand(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
