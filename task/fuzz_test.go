package task

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFLVItem feeds arbitrary bytes to the FLV playlist reader: it must
// return errors, never panic or allocate beyond its tag bound.
func FuzzFLVItem(f *testing.F) {
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x09\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x17\x00\x00\x00\x00\x00\x00\x00\x10"))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x08\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x2f\x00\x00\x00\x00\x0d"))
	if seed, err := os.ReadFile(filepath.Join("..", "media", "testdata", "h264_aac_640x360.flv")); err == nil && len(seed) > 4096 {
		f.Add(seed[:4096])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		it, err := newFLVReader(bytes.NewReader(data), "fuzz.flv")
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			if _, err := it.Next(); err != nil {
				return
			}
		}
	})
}

// FuzzMP4Item feeds arbitrary bytes to the MP4 playlist reader.
func FuzzMP4Item(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08ftyp"))
	f.Add([]byte("\x00\x00\x00\x10moov\x00\x00\x00\x08trak"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.mp4")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		it, err := openItem(p)
		if err != nil {
			return
		}
		defer it.Close()
		for i := 0; i < 1000; i++ {
			if _, err := it.Next(); err != nil {
				return
			}
		}
	})
}
