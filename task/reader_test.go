package task

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media/unit"
)

// makeMedia runs ffmpeg to make a 2 s 25 fps test file; vcodec/acodec are
// ffmpeg encoder names ("" = no such track).
func makeMedia(t testing.TB, dir, name, vcodec, acodec string, extra ...string) string {
	t.Helper()
	testmedia.Need(t, "ffmpeg")
	out := filepath.Join(dir, name)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}
	if vcodec != "" {
		args = append(args, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2")
	}
	if acodec != "" {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2")
	}
	if vcodec != "" {
		args = append(args, "-c:v", vcodec, "-g", "25", "-pix_fmt", "yuv420p")
		switch vcodec {
		case "libx264":
			args = append(args, "-preset", "ultrafast", "-bf", "2")
		case "libx265":
			args = append(args, "-preset", "ultrafast", "-x265-params", "log-level=error")
		}
	}
	if acodec != "" {
		args = append(args, "-c:a", acodec)
	}
	args = append(args, extra...)
	args = append(args, out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	return out
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, v, a string
		extra            []string
		wantV, wantA     string
		wantErr          error
	}{
		{"mp4 moov at end", "end.mp4", "libx264", "aac", nil, "H264", "AAC", nil},
		{"mp4 faststart", "fast.mp4", "libx264", "aac", []string{"-movflags", "+faststart"}, "H264", "AAC", nil},
		{"mp4 h265", "hevc.mp4", "libx265", "aac", []string{"-tag:v", "hvc1"}, "H265", "AAC", nil},
		{"mp4 video only", "v.mp4", "libx264", "", nil, "H264", "", nil},
		{"flv h264 aac", "a.flv", "libx264", "aac", nil, "H264", "AAC", nil},
		{"mp4 mpeg4 video refused", "mpeg4.mp4", "mpeg4", "aac", nil, "", "", ErrCodec},
		{"mp4 mp3 audio refused", "mp3.mp4", "libx264", "libmp3lame", nil, "", "", ErrCodec},
		{"flv flv1 video refused", "flv1.flv", "flv", "aac", nil, "", "", ErrCodec},
		{"flv mp3 audio refused", "mp3.flv", "libx264", "libmp3lame", nil, "", "", ErrCodec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := makeMedia(t, dir, c.file, c.v, c.a, c.extra...)
			it, err := openItem(path)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("open: got %v, want %v", err, c.wantErr)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			info := it.Info()
			if info.Video != c.wantV || info.Audio != c.wantA {
				t.Fatalf("codecs %q/%q, want %q/%q", info.Video, info.Audio, c.wantV, c.wantA)
			}
			var video, audio, keys int
			var last int64 = -1
			for {
				p, err := it.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch p.Kind {
				case unit.KindVideo:
					video++
					if p.Keyframe {
						keys++
					}
					if p.Time < last {
						t.Fatalf("video dts went back: %d after %d", p.Time, last)
					}
					last = p.Time
				case unit.KindAudio:
					audio++
				}
			}
			if c.wantV != "" && (video != 50 || keys < 2) {
				t.Errorf("video frames %d (keyframes %d), want 50 (>= 2)", video, keys)
			}
			if c.wantA != "" && audio < 90 {
				t.Errorf("audio frames %d, want about 94", audio)
			}
			if last < 1800 && c.wantV != "" {
				t.Errorf("last video dts %d ms, want about 1960", last)
			}
		})
	}
}

func TestTruncatedFilesDoNotPanic(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"x.mp4", "x.flv"} {
		path := makeMedia(t, dir, name, "libx264", "aac")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 3, 20, 200, len(data) / 2, len(data) - 1} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				p := filepath.Join(dir, fmt.Sprintf("cut-%d-%s", n, name))
				os.WriteFile(p, data[:n], 0o644)
				it, err := openItem(p)
				if err != nil {
					return
				}
				defer it.Close()
				for i := 0; i < 10000; i++ {
					if _, err := it.Next(); err != nil {
						return
					}
				}
			})
		}
	}
}
