package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestSignFormat(t *testing.T) {
	exp := time.Unix(1735689600, 0)
	// The recipe in the package doc gives the same token:
	// printf 'publish|live/cam1|1735689600' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef -hex
	const want = "token=1735689600-e17e5658b8ae3ae94a21ef1bdc63f31a60168692f7967fe47c91af83e0054191"
	if got := Sign(testKey, ActionPublish, "live/cam1", exp); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if got := Sign(testKey, ActionPublish, "live/cam1", exp.Add(999*time.Millisecond)); got != want {
		t.Fatalf("a sub-second expiry changed the token: %q", got)
	}
	if got := Sign(testKey, ActionPlay, "live/cam1", exp); got == want {
		t.Fatal("play and publish tokens are equal")
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	valid := Sign(testKey, ActionPublish, "live/cam1", now.Add(time.Hour))
	tamper := func(q string) string {
		b := []byte(q)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	sigOf := func(q string) string { _, s, _ := strings.Cut(q, "-"); return s }
	tests := []struct {
		name   string
		key    []byte
		action string
		stream string
		query  string
		now    time.Time
		want   error // nil for success
	}{
		{name: "valid", key: testKey, action: ActionPublish, stream: "live/cam1", query: valid, now: now},
		{name: "valid with leading ? and other params", key: testKey, action: ActionPublish, stream: "live/cam1", query: "?foo=bar&" + valid + "&x", now: now},
		{name: "valid url-escaped", key: testKey, action: ActionPublish, stream: "live/cam1", query: strings.Replace(valid, "-", "%2D", 1), now: now},
		{name: "valid one second before expiry", key: testKey, action: ActionPublish, stream: "live/cam1", query: valid, now: now.Add(time.Hour - time.Second)},
		{name: "expired at the second", key: testKey, action: ActionPublish, stream: "live/cam1", query: valid, now: now.Add(time.Hour), want: ErrExpired},
		{name: "expired later", key: testKey, action: ActionPublish, stream: "live/cam1", query: valid, now: now.Add(48 * time.Hour), want: ErrExpired},
		{name: "wrong stream", key: testKey, action: ActionPublish, stream: "live/cam2", query: valid, now: now, want: ErrBadSignature},
		{name: "wrong action: publish token cannot play", key: testKey, action: ActionPlay, stream: "live/cam1", query: valid, now: now, want: ErrBadSignature},
		{name: "wrong key", key: []byte("another-key-of-enough-length"), action: ActionPublish, stream: "live/cam1", query: valid, now: now, want: ErrBadSignature},
		{name: "tampered signature", key: testKey, action: ActionPublish, stream: "live/cam1", query: tamper(valid), now: now, want: ErrBadSignature},
		{name: "tampered expiry extended", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=" + strconv.FormatInt(now.Add(99*time.Hour).Unix(), 10) + "-" + sigOf(valid), now: now, want: ErrBadSignature},
		{name: "tampered and expired reports bad signature", key: testKey, action: ActionPublish, stream: "live/cam1", query: tamper(valid), now: now.Add(48 * time.Hour), want: ErrBadSignature},
		{name: "missing", key: testKey, action: ActionPublish, stream: "live/cam1", query: "", now: now, want: ErrMissing},
		{name: "missing among others", key: testKey, action: ActionPublish, stream: "live/cam1", query: "a=1&b=2", now: now, want: ErrMissing},
		{name: "empty token", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=", now: now, want: ErrMissing},
		{name: "no dash", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=" + exp, now: now, want: ErrMalformed},
		{name: "short signature", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=" + exp + "-abcd", now: now, want: ErrMalformed},
		{name: "non-hex signature", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=" + exp + "-" + strings.Repeat("z", 64), now: now, want: ErrMalformed},
		{name: "signed expiry", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=+" + exp + "-" + sigOf(valid), now: now, want: ErrMalformed},
		{name: "leading zero expiry", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=0" + exp + "-" + sigOf(valid), now: now, want: ErrMalformed},
		{name: "many leading zeros", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=000000" + exp + "-" + sigOf(valid), now: now, want: ErrMalformed},
		{name: "zero-padded zero expiry", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=00-" + sigOf(valid), now: now, want: ErrMalformed},
		{name: "upper-case hex signature", key: testKey, action: ActionPublish, stream: "live/cam1", query: "token=" + exp + "-" + strings.ToUpper(sigOf(valid)), now: now, want: ErrMalformed},
		{name: "twice", key: testKey, action: ActionPublish, stream: "live/cam1", query: valid + "&" + valid, now: now, want: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.key, tc.action, tc.stream, tc.query, tc.now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyRefusesMisuse(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	q := Sign(testKey, ActionPlay, "live/cam1", now.Add(time.Hour))
	if err := Verify(nil, ActionPlay, "live/cam1", q, now); err == nil {
		t.Fatal("Verify with an empty key succeeded")
	}
	if err := Verify(testKey, "admin", "live/cam1", q, now); err == nil {
		t.Fatal("Verify with an unknown action succeeded")
	}
}

func TestSplitStreamQuery(t *testing.T) {
	tests := []struct{ name, in, key, query string }{
		{name: "with query", in: "live/cam1?token=1-ab", key: "live/cam1", query: "token=1-ab"},
		{name: "without query", in: "live/cam1", key: "live/cam1", query: ""},
		{name: "empty query", in: "live/cam1?", key: "live/cam1", query: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, q := SplitStreamQuery(tc.in)
			if k != tc.key || q != tc.query {
				t.Fatalf("SplitStreamQuery(%q) = %q, %q; want %q, %q", tc.in, k, q, tc.key, tc.query)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr string
	}{
		{name: "base64 text used as-is, newline trimmed", path: write("ok", "c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n", 0o600), want: "c2VjcmV0LXNlY3JldC1zZWNyZXQ="},
		{name: "empty", path: write("empty", "  \n", 0o600), wantErr: "the file is empty"},
		{name: "short", path: write("short", "abc\n", 0o600), wantErr: "shorter than 16 bytes"},
		{name: "too large", path: write("big", strings.Repeat("a", 5000), 0o600), wantErr: "larger than"},
		{name: "missing", path: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "no path", path: "", wantErr: "no file given"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := LoadKey(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadKey error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(key) != tc.want {
				t.Fatalf("LoadKey = %q, %v; want %q", key, err, tc.want)
			}
		})
	}
	t.Run("world readable warns", func(t *testing.T) {
		p := write("open", "0123456789abcdef0123", 0o600)
		if w := KeyFileWarning(p); w != "" {
			t.Fatalf("mode 0600 warned: %s", w)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		if w := KeyFileWarning(p); !strings.Contains(w, "readable by every user") {
			t.Fatalf("mode 0644 warning = %q", w)
		}
	})
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	f.Add("token=1700003600-"+strings.Repeat("ab", 32), "live/cam1", int64(1700003600))
	f.Add(Sign(testKey, ActionPlay, "live/cam1", now.Add(time.Hour)), "live/cam1", int64(1700003600))
	f.Add("?token=1-0&token=2-1", "a/b", int64(0))
	f.Add("token=99999999999999999999-"+strings.Repeat("0", 64), "", int64(-1))
	f.Add("token=%zz", "x", int64(5))
	f.Fuzz(func(t *testing.T, query, stream string, expiry int64) {
		exp, sig, err := ParseQuery(query)
		if err == nil && len(sig) != 32 {
			t.Fatalf("ParseQuery(%q) accepted a %d-byte signature", query, len(sig))
		}
		_ = exp
		err = Verify(testKey, ActionPlay, stream, query, now)
		if err == nil {
			// Only a real signature may pass: re-signing must give the same token.
			e, _, _ := ParseQuery(query)
			if Verify(testKey, ActionPublish, stream, query, now) == nil {
				t.Fatalf("query %q verified for both actions", query)
			}
			if !strings.Contains(strings.ToLower(query), Sign(testKey, ActionPlay, stream, e)[len("token="):]) && !strings.Contains(query, "%") {
				t.Fatalf("query %q verified without holding the signed token", query)
			}
		}
		// Round trip: what Sign makes, Verify accepts until expiry.
		e := time.Unix(expiry, 0)
		q := Sign(testKey, ActionPublish, stream, e)
		err = Verify(testKey, ActionPublish, stream, q, e.Add(-time.Second))
		if expiry >= 0 && len(strconv.FormatInt(expiry, 10)) <= 19 && err != nil {
			t.Fatalf("Sign/Verify round trip for %q expiry %d: %v", stream, expiry, err)
		}
		if err := Verify(testKey, ActionPublish, stream, q, e); err != nil && !errors.Is(err, ErrExpired) && expiry >= 0 {
			t.Fatalf("at expiry got %v, want ErrExpired", err)
		}
	})
}
