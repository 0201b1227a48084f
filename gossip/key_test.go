package gossip

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKey(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name    string
		content string
		wantLen int
		wantErr string
	}{
		{"aes-128", b64(16), 16, ""},
		{"aes-192", b64(24), 24, ""},
		{"aes-256 with whitespace", "  " + b64(32) + "\n\n", 32, ""},
		{"wrong length", b64(20), 0, "key is 20 bytes, want 16, 24 or 32"},
		{"not base64", "not a key!", 0, "not valid base64"},
		{"empty", "\n", 0, "file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeKeyFile(t, tt.content)
			key, err := LoadKey(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p) {
					t.Errorf("LoadKey = %v; want an error naming %s and saying %q", err, p, tt.wantErr)
				}
				return
			}
			if err != nil || len(key) != tt.wantLen {
				t.Errorf("LoadKey = %d bytes, %v; want %d bytes", len(key), err, tt.wantLen)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "nope.key")
	if _, err := LoadKey(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

func TestGenerateKey(t *testing.T) {
	k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateKey()
	if k1 == k2 {
		t.Error("two generated keys are equal")
	}
	key, err := LoadKey(writeKeyFile(t, k1))
	if err != nil || len(key) != 32 {
		t.Errorf("generated key loads as %d bytes, %v; want 32", len(key), err)
	}
}
