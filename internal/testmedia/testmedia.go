// Package testmedia drives real media peers (ffmpeg, ffprobe) for tests:
// it publishes synthetic lavfi streams and reads streams back, reporting
// what a user would check: codecs, resolution, frame counts, timestamps
// and decode errors.
package testmedia

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// Need skips the test when a binary is missing (CI installs them all).
func Need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install ffmpeg srt-tools): %v", b, err)
		}
	}
}

// Source describes a synthetic stream.
type Source struct {
	Width, Height int
	FPS           int
	GOP           int // frames between keyframes
	Codec         string
	Bitrate       string // e.g. "1M"
	CBR           bool   // constant bit rate at Bitrate (x264 pads with filler), else an average
	Duration      time.Duration
	Audio         bool
	Format        string // "flv" or "mpegts"
	Realtime      bool   // -re
	// TSFromZero starts MPEG-TS timestamps at 0 (-muxdelay 0 -muxpreload
	// 0), as a TS our own muxer made does, instead of ffmpeg's 1.4 s
	TSFromZero bool
}

// Defaults fills in a 640x360 25 fps H.264 + AAC source with a 2 s GOP.
func (s Source) Defaults() Source {
	if s.Width == 0 {
		s.Width, s.Height = 640, 360
	}
	if s.FPS == 0 {
		s.FPS = 25
	}
	if s.GOP == 0 {
		s.GOP = 2 * s.FPS
	}
	if s.Codec == "" {
		s.Codec = "libx264"
	}
	if s.Bitrate == "" {
		s.Bitrate = "800k"
	}
	if s.Duration == 0 {
		s.Duration = 6 * time.Second
	}
	if s.Format == "" {
		s.Format = "flv"
	}
	return s
}

// Frames is how many video frames the source produces.
func (s Source) Frames() int { return int(s.Duration.Seconds() * float64(s.FPS)) }

// Args builds the ffmpeg arguments that publish the source to url.
func (s Source) Args(url string) []string {
	s = s.Defaults()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	if s.Realtime {
		args = append(args, "-re")
	}
	args = append(args, "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc=size=%dx%d:rate=%d:duration=%g", s.Width, s.Height, s.FPS, s.Duration.Seconds()))
	if s.Audio {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%g", s.Duration.Seconds()))
	}
	args = append(args, "-c:v", s.Codec, "-b:v", s.Bitrate, "-g", strconv.Itoa(s.GOP), "-keyint_min", strconv.Itoa(s.GOP), "-pix_fmt", "yuv420p")
	switch s.Codec {
	case "libx264":
		params := "scenecut=0"
		if s.CBR {
			params += ":nal-hrd=cbr:force-cfr=1"
			args = append(args, "-minrate", s.Bitrate, "-maxrate", s.Bitrate, "-bufsize", s.Bitrate)
		}
		args = append(args, "-preset", "ultrafast", "-tune", "zerolatency", "-x264-params", params)
	case "libx265":
		args = append(args, "-preset", "ultrafast", "-x265-params", "scenecut=0:log-level=error")
	}
	if s.Audio {
		args = append(args, "-c:a", "aac", "-b:a", "64k", "-ar", "48000")
	}
	if strings.HasPrefix(url, "srt://") {
		if s.TSFromZero {
			args = append(args, "-muxdelay", "0", "-muxpreload", "0")
		}
		args = append(args, "-f", "mpegts")
	} else {
		args = append(args, "-f", s.Format)
	}
	return append(args, url)
}

// Publish starts ffmpeg publishing src to url. The process is killed when
// the test ends; Wait on the returned command to see how it ended.
func Publish(t testing.TB, ctx context.Context, src Source, url string) *Proc {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ffmpeg", src.Args(url)...)
	return start(t, cmd)
}

// Proc is a started peer process with its stderr captured.
type Proc struct {
	Cmd    *exec.Cmd
	Stderr *bytes.Buffer
	done   chan error
}

func start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.doneOnce()
	})
	return p
}

func (p *Proc) doneOnce() <-chan error {
	ch := make(chan error, 1)
	go func() {
		err := <-p.done
		ch <- err
		p.done <- err
	}()
	return ch
}

// Wait waits up to d for the process to exit.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case err := <-p.doneOnce():
		return err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %s", p.Cmd.Path, d)
	}
}

// Result is what a reader saw.
type Result struct {
	VideoCodec   string
	AudioCodec   string
	Width        int
	Height       int
	VideoFrames  int
	AudioFrames  int
	Keyframes    int
	NonMonotonic int // video DTS that did not increase
	// MaxVideoStep is the largest step between consecutive video DTS:
	// frames missing in the middle of what was received
	MaxVideoStep time.Duration
	FirstKey     bool
	DecodeErrors string // ffmpeg's error output while decoding
}

type probeOut struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Packets []struct {
		CodecType string `json:"codec_type"`
		DTS       string `json:"dts_time"`
		Flags     string `json:"flags"`
	} `json:"packets"`
}

// Read reads url with ffprobe for at most d (a live stream is cut there) and
// counts packets, then decodes the same capture with ffmpeg to collect
// decode errors. extra are input options such as "-timeout".
func Read(ctx context.Context, url string, d time.Duration, extra ...string) (Result, error) {
	var res Result
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	// ffmpeg copies the stream to a file for at most d, then ffprobe and a
	// decode pass look at the file: what was received, exactly.
	tmp, err := tempFile()
	if err != nil {
		return res, err
	}
	defer os.Remove(tmp)
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "8000000"}, extra...)
	args = append(args, "-i", url, "-t", fmt.Sprintf("%g", d.Seconds()), "-c", "copy", "-f", "nut", "-y", tmp)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("ffmpeg read %s: %v: %s", url, err, stderr.String())
	}
	return Analyze(ctx, tmp)
}

// Analyze probes and decodes a media file.
func Analyze(ctx context.Context, path string) (Result, error) {
	var res Result
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_streams", "-show_packets",
		"-show_entries", "packet=codec_type,dts_time,flags:stream=codec_type,codec_name,width,height",
		"-of", "json", path).Output()
	if err != nil {
		return res, fmt.Errorf("ffprobe %s: %v", path, err)
	}
	var po probeOut
	if err := json.Unmarshal(out, &po); err != nil {
		return res, fmt.Errorf("ffprobe json: %v", err)
	}
	for _, s := range po.Streams {
		switch s.CodecType {
		case "video":
			res.VideoCodec, res.Width, res.Height = s.CodecName, s.Width, s.Height
		case "audio":
			res.AudioCodec = s.CodecName
		}
	}
	last := -1.0
	for i, p := range po.Packets {
		switch p.CodecType {
		case "video":
			res.VideoFrames++
			if strings.Contains(p.Flags, "K") {
				res.Keyframes++
				if res.VideoFrames == 1 {
					res.FirstKey = true
				}
			}
			if dts, err := strconv.ParseFloat(p.DTS, 64); err == nil {
				if dts <= last {
					res.NonMonotonic++
				}
				if last >= 0 {
					res.MaxVideoStep = max(res.MaxVideoStep, time.Duration((dts-last)*float64(time.Second)))
				}
				last = dts
			}
		case "audio":
			res.AudioFrames++
		}
		_ = i
	}
	dec := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
	var stderr bytes.Buffer
	dec.Stderr = &stderr
	if err := dec.Run(); err != nil {
		return res, fmt.Errorf("decode %s: %v: %s", path, err, stderr.String())
	}
	res.DecodeErrors = strings.TrimSpace(stderr.String())
	return res, nil
}

// FreePort returns a port on 127.0.0.1 that is free over both TCP and
// UDP: the SRT, WebRTC and gossip listeners bind it over UDP (gossip over
// both), and a TCP check alone may hand out a UDP port another test holds.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n different ports on 127.0.0.1, each free over both
// TCP and UDP: each is held until all are chosen, as FreePort one after
// another may return the same port twice (an agent then refuses two
// listeners on one port).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		port, release, err := holdPort()
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		ports = append(ports, port)
	}
	return ports
}

// holdPort binds a port on 127.0.0.1 over TCP and the same port over UDP
// (trying other ports while the UDP one is taken) and returns it with the
// function that releases both.
func holdPort() (int, func(), error) {
	var last error
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, nil, fmt.Errorf("free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			ln.Close()
			last = err
			continue
		}
		return port, func() { pc.Close(); ln.Close() }, nil
	}
	return 0, nil, fmt.Errorf("free port: no TCP port whose UDP twin is free in 20 tries: %w", last)
}

// Eventually is poll.Until for the media tests that have always used it.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, d, what, cond)
}

// Lines returns the non-empty lines of s.
func Lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
