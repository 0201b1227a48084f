package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFlowSwitchDecodes: a player of a flow whose primary (640 px) stalls
// mid-GOP while it plays gets the backup (320 px, other parameter sets)
// and then the primary again without one decode error: the switch enters
// the backup at its keyframe with the backup's own SPS/PPS, also for a
// player that keeps only the first sequence header (ffmpeg -c copy into a
// file). The test polls the player's file until it decoded a second of
// each source after each switch, then counts its frames and errors; each
// change of picture size is one of the flow's switches.
func TestFlowSwitchDecodes(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	testmedia.Need(t, "ffmpeg", "ffprobe")
	a := startAgent(t, "")
	ctx := context.Background()
	flows := startFlow(t, ctx, a, flow.Spec{ID: "sw",
		Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/main"},
		Backup:  &flow.Source{Type: flow.SrcRTMPPush, Stream: "live/bak"},
		Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}})
	main := testmedia.Source{Realtime: true, Audio: true, Duration: time.Minute, Width: 640, Height: 360}.Defaults()
	bak := testmedia.Source{Realtime: true, Audio: true, Duration: time.Minute, Width: 320, Height: 180}.Defaults()
	primary := testmedia.Publish(t, ctx, main, a.rtmp("live/main"))
	testmedia.Publish(t, ctx, bak, a.rtmp("live/bak"))
	waitVideo(t, a, "flow/sw")

	file := filepath.Join(t.TempDir(), "player.nut")
	player := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rw_timeout", "8000000",
		"-i", a.flv("flow/sw"), "-c", "copy", "-f", "nut", "-y", file)
	var playerErr bytes.Buffer
	player.Stderr = &playerErr
	if err := player.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { player.Process.Kill(); player.Wait() })
	var runs []frameRun
	waitRun := func(what string, size string, after string) {
		t.Helper()
		testmedia.Eventually(t, 20*time.Second, "the player decoded "+what, func() bool {
			runs, _ = decodeRuns(t, file)
			for i := 1; i < len(runs); i++ {
				if runs[i].size == size && runs[i-1].size == after && runs[i].frames >= 25 {
					return true
				}
			}
			return false
		})
	}
	waitSent(t, a, "flow/sw", 150_000) // the player plays the primary, mid-GOP
	// the primary stalls (as a loaded publisher does) and resumes: the
	// flow fails over to the backup and returns at a primary keyframe
	if err := primary.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var v flow.View
	getFlow := func() {
		var err error
		if v, err = flows.Get(ctx, "sw"); err != nil {
			t.Fatalf("GET flow sw: %v", err)
		}
	}
	testmedia.Eventually(t, 5*time.Second, "switch to the backup", func() bool {
		getFlow()
		return v.Status != nil && v.Status.Active == "backup"
	})
	waitRun("a second of the backup (320x180) after the primary", "320x180", "640x360")
	if err := primary.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testmedia.Eventually(t, 10*time.Second, "switch back to the primary", func() bool {
		getFlow()
		return v.Status != nil && v.Status.Active == "primary"
	})
	waitRun("a second of the primary (640x360) after the backup", "640x360", "320x180")

	// the player stops as a user does (ffmpeg ends its file on SIGINT);
	// then the whole file is counted and decoded
	player.Process.Signal(os.Interrupt)
	if err := player.Wait(); err != nil && !strings.Contains(err.Error(), "exit status 255") {
		t.Fatalf("player: %v: %s", err, playerErr.String())
	}
	res, err := testmedia.Analyze(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	runs, decodeErrs := decodeRuns(t, file)
	decoded := 0
	var sizes []string
	for _, r := range runs {
		decoded += r.frames
		sizes = append(sizes, fmt.Sprintf("%s x%d", r.size, r.frames))
	}
	t.Logf("player: %+v; decoded %s", res, strings.Join(sizes, " -> "))
	if res.VideoCodec != "h264" || res.Keyframes < 2 || res.DecodeErrors != "" || len(decodeErrs) > 0 {
		t.Errorf("player across 640 -> 320 -> 640 px switches: %+v, errors %q; want h264, both sources' keyframes, no decode errors", res, decodeErrs)
	}
	if decoded != res.VideoFrames {
		t.Errorf("decoded %d of the %d video frames the player received", decoded, res.VideoFrames)
	}
	// a loaded primary may stall again: every further switch shows, and
	// nothing but a switch changes the pictures
	getFlow()
	if changes := len(runs) - 1; changes < 2 || runs[0].size != "640x360" || changes > v.Status.Switches {
		t.Errorf("the player's pictures went %s across %d switches, want 640x360 -> 320x180 -> 640x360 and a change only at a switch",
			strings.Join(sizes, " -> "), v.Status.Switches)
	}
}

// frameRun is a run of decoded pictures of one size.
type frameRun struct {
	size   string
	frames int
}

var showinfoSize = regexp.MustCompile(`\] \[info\] n: *\d+ .* s:(\d+x\d+) `)

// decodeRuns decodes the video of the media file at path (which may still
// grow) and returns its pictures as runs of one size, and the decoder's
// error lines.
func decodeRuns(t *testing.T, path string) (runs []frameRun, errs []string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "level+info", "-i", path,
		"-map", "0:v", "-vf", "showinfo", "-f", "null", "-")
	out, _ := cmd.CombinedOutput() // a file still written to may end mid-packet
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := showinfoSize.FindStringSubmatch(line); m != nil {
			if n := len(runs); n > 0 && runs[n-1].size == m[1] {
				runs[n-1].frames++
			} else {
				runs = append(runs, frameRun{m[1], 1})
			}
			continue
		}
		if strings.Contains(line, "[error]") || strings.Contains(line, "[fatal]") {
			errs = append(errs, line)
		}
	}
	return runs, errs
}
