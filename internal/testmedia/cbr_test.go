package testmedia

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestCBRSource: a CBR source really carries its bit rate (x264 alone
// undershoots an average target on the test pattern by more than half).
func TestCBRSource(t *testing.T) {
	Need(t, "ffmpeg")
	out := t.TempDir() + "/cbr.flv"
	src := Source{Duration: 4 * time.Second, Bitrate: "3M", CBR: true, Format: "flv"}
	args := src.Args(out)
	if b, err := exec.Command("ffmpeg", append(args[:len(args)-1], "-y", out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	mbps := float64(fi.Size()*8) / src.Duration.Seconds() / 1e6
	if mbps < 2.7 || mbps > 3.3 {
		t.Errorf("CBR 3M source carries %.2f Mbit/s, want 3 +-10%%", mbps)
	}
}
