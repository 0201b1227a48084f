package testmedia

import (
	"encoding/binary"
	"os"
	"testing"
)

// FLVTag is one tag of an FLV file: its type (8 audio, 9 video, 18 script
// data, the numbers of unit.Kind), its timestamp in ms and its body.
type FLVTag struct {
	Kind byte
	TS   int64
	Body []byte
}

// FLVTags reads the tags of the FLV file at path; a truncated last tag is
// left out.
func FLVTags(t testing.TB, path string) []FLVTag {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		t.Fatalf("%s is not FLV", path)
	}
	var tags []FLVTag
	for b = b[binary.BigEndian.Uint32(b[5:9])+4:]; len(b) >= 15; {
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if len(b) < 15+n {
			break // a truncated last tag
		}
		ts := int64(b[4])<<16 | int64(b[5])<<8 | int64(b[6]) | int64(b[7])<<24
		tags = append(tags, FLVTag{Kind: b[0] & 0x1f, TS: ts, Body: b[11 : 11+n]})
		b = b[15+n:]
	}
	return tags
}

// FLVHeaders returns the video and audio sequence header bodies of an FLV
// file made by ffmpeg.
func FLVHeaders(t testing.TB, path string) (video, audio []byte) {
	t.Helper()
	for _, tag := range FLVTags(t, path) {
		switch body := tag.Body; {
		case tag.Kind == 9 && video == nil && len(body) > 1 && body[1] == 0:
			video = body
		case tag.Kind == 8 && audio == nil && len(body) > 1 && body[1] == 0:
			audio = body
		}
	}
	if video == nil || audio == nil {
		t.Fatalf("%s: no sequence headers", path)
	}
	return video, audio
}
