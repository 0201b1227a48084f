package hls

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/relaymesh/relaymesh/media"
)

func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		file    string
		variant gohlslib.MuxerVariant
		name    string
		kind    int
		ok      bool
	}{
		{"index.m3u8", gohlslib.MuxerVariantLowLatency, "index.m3u8", kindPlaylist, true},
		{"plain.m3u8", gohlslib.MuxerVariantMPEGTS, "main_stream.m3u8", kindPlaylist, true},
		{"video1_stream.m3u8", gohlslib.MuxerVariantLowLatency, "video1_stream.m3u8", kindPlaylist, true},
		{"audio2_stream.m3u8", gohlslib.MuxerVariantLowLatency, "audio2_stream.m3u8", kindPlaylist, true},
		{"main_stream.m3u8", 0, "", 0, false},
		{"ab12_video1_part3.mp4", gohlslib.MuxerVariantLowLatency, "ab12_video1_part3.mp4", kindPart, true},
		{"ab12_video1_seg9.mp4", gohlslib.MuxerVariantLowLatency, "ab12_video1_seg9.mp4", kindFile, true},
		{"ab12_video1_init.mp4", gohlslib.MuxerVariantLowLatency, "ab12_video1_init.mp4", kindFile, true},
		{"ab12_main_seg9.ts", gohlslib.MuxerVariantMPEGTS, "ab12_main_seg9.ts", kindFile, true},
		{"gap.mp4", 0, "", 0, false},
		{"x.ts", 0, "", 0, false},
		{"secret.txt", 0, "", 0, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			v, name, kind, ok := route(tc.file)
			if v != tc.variant || name != tc.name || kind != tc.kind || ok != tc.ok {
				t.Errorf("route(%q) = %v %q %d %v, want %v %q %d %v", tc.file, v, name, kind, ok, tc.variant, tc.name, tc.kind, tc.ok)
			}
		})
	}
}

// FuzzSplitAVCC: publisher bytes never panic the NAL unit splitter, and
// what it returns lies inside the input.
func FuzzSplitAVCC(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0x65, 0x88}, 4)
	f.Add([]byte{0, 0, 0, 9, 1}, 4)
	f.Add([]byte{0, 1, 0x41}, 2)
	f.Fuzz(func(t *testing.T, b []byte, nalLen int) {
		au, err := splitAVCC(b, nalLen)
		if err != nil {
			return
		}
		n := 0
		for _, nalu := range au {
			if len(nalu) == 0 {
				t.Fatal("empty NAL unit")
			}
			n += len(nalu)
		}
		if n > len(b) {
			t.Fatalf("%d bytes of NAL units from %d bytes", n, len(b))
		}
	})
}

func TestLiveEdge(t *testing.T) {
	pl := `#EXTM3U
#EXT-X-MEDIA-SEQUENCE:3
#EXTINF:1.00000,
gap.mp4
#EXT-X-PART:DURATION=0.2,URI="ab_video1_part0.mp4"
#EXTINF:1.00000,
ab_video1_seg10.mp4
#EXT-X-PART:DURATION=0.2,URI="ab_video1_part5.mp4"
#EXT-X-PART:DURATION=0.2,URI="ab_video1_part6.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="ab_video1_part7.mp4?token=1-ab"
`
	msn, parts, hint, ok := liveEdge(pl)
	if !ok || msn != 5 || parts != 2 || hint != 7 {
		t.Errorf("liveEdge = %d %d %d %v, want 5 2 7 true", msn, parts, hint, ok)
	}
	if _, _, _, ok := liveEdge("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n"); ok {
		t.Error("liveEdge of a playlist without a preload hint: ok")
	}
}

// TestRequestAfterClose: a request that reaches the server after Close
// starts no muxer (its goroutine would race Close's wait) and is told why.
func TestRequestAfterClose(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	s, err := New(Config{}, hub, log)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/live/x/index.m3u8", nil))
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), media.ErrHubClosed.Error()) {
		t.Errorf("request after Close: %d %q, want 404 %q", w.Code, w.Body.String(), media.ErrHubClosed)
	}
	if n := s.MuxerCount(); n != 0 {
		t.Errorf("%d muxers after Close", n)
	}
}
