package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
)

// GenerateKey returns a new random 32-byte (AES-256) gossip key, base64
// encoded, ready to be written to a key file.
func GenerateKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("generate gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// LoadKey reads a gossip key file: one base64 line holding a 16, 24 or 32
// byte AES key. Surrounding whitespace is ignored.
func LoadKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return parseKey(path, raw)
}

func parseKey(path string, raw []byte) ([]byte, error) {
	text := bytes.TrimSpace(raw)
	if len(text) == 0 {
		return nil, fmt.Errorf("gossip key file %s: file is empty; write a base64 key into it (e.g. from `openssl rand -base64 32`)", path)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(key, text)
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: not valid base64 (%v); write a key from `openssl rand -base64 32`", path, err)
	}
	key = key[:n]
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("gossip key file %s: key is %d bytes, want 16, 24 or 32 (AES-128/192/256); write a key from `openssl rand -base64 32`", path, len(key))
}
