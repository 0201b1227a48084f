package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// MinKeyLen is the shortest key LoadKey accepts, in bytes.
const MinKeyLen = 16

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 4096

// ErrKeyTooShort is returned by LoadKey for a key of fewer than MinKeyLen
// bytes.
var ErrKeyTooShort = fmt.Errorf("the key is shorter than %d bytes: generate one with `head -c 32 /dev/urandom | base64 > FILE`", MinKeyLen)

// LoadKey reads an HMAC key file. The key is the file's content with
// surrounding whitespace (such as the final newline) removed, used as-is:
// a base64 or hex text is not decoded, so any tool that signs URLs uses
// the same text as its HMAC secret. Generate one with
//
//	head -c 32 /dev/urandom | base64 > /etc/relaymesh/auth.key
//
// The key must be at least MinKeyLen bytes and the file at most 4 KiB.
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("auth key: no file given")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth key: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("auth key %s: the file is larger than %d bytes; it should hold one line of text", path, maxKeyFile)
	}
	key := bytes.TrimSpace(data)
	if len(key) == 0 {
		return nil, fmt.Errorf("auth key %s: the file is empty: generate one with `head -c 32 /dev/urandom | base64 > %s`", path, path)
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("auth key %s: %w", path, ErrKeyTooShort)
	}
	return key, nil
}

// KeyFileWarning returns a one-line warning when a secret file can be read
// by other users (mode bits o+r), else "". It does not fail on a missing
// file; LoadKey reports that.
func KeyFileWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if fi.Mode().Perm()&fs.FileMode(0o004) != 0 {
		return fmt.Sprintf("%s is readable by every user (mode %04o): run chmod o-rwx %s", path, fi.Mode().Perm(), path)
	}
	return ""
}
