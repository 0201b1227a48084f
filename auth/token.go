// Package auth signs and verifies expiring URLs for publishing and playing
// streams.
//
// A signed URL carries one query parameter:
//
//	token=<expiry>-<signature>
//
// where expiry is a Unix time in seconds and signature is the lowercase hex
// HMAC-SHA256, under the node's key, of
//
//	<action>|<app/name>|<expiry>
//
// with action "publish" or "play", so a play token cannot publish and a
// token for one stream does not open another. The single compact parameter
// holds only digits, '-' and hex, so it survives every place a client puts
// it: the RTMP stream name or tcUrl ("rtmp://edge/live/cam1?token=…"), an
// SRT streamid ("live/cam1?token=…") and an HTTP-FLV URL
// ("http://edge:8080/live/cam1.flv?token=…").
//
// Any backend can mint tokens with the shared key, e.g. in a shell:
//
//	exp=$(( $(date +%s) + 3600 ))
//	sig=$(printf 'publish|live/cam1|%s' "$exp" | openssl dgst -sha256 -hmac "$(cat key)" -hex | cut -d' ' -f2)
//	echo "rtmp://edge/live/cam1?token=$exp-$sig"
//
// The key file holds the secret as text; see [LoadKey].
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Actions a token may grant.
const (
	ActionPublish = "publish"
	ActionPlay    = "play"
)

// QueryParam is the URL query parameter that carries the token.
const QueryParam = "token"

// sigHexLen is the length of the hex HMAC-SHA256 in a token.
const sigHexLen = 2 * sha256.Size

// Errors returned by Verify and ParseQuery; test them with errors.Is.
var (
	ErrMissing      = errors.New("a signed URL is required: add ?token=<expiry>-<signature> to the URL")
	ErrMalformed    = errors.New("the token is malformed: want token=<unix expiry>-<64 hex digits>")
	ErrExpired      = errors.New("the signed URL has expired: ask for a new one")
	ErrBadSignature = errors.New("the signature does not match: the URL was signed for another stream, action or key; ask for a new one")
)

// Sign returns the query string ("token=<expiry>-<hex>", without '?') that
// grants action ("publish" or "play") on streamKey ("app/name") until
// expires (rounded down to the second). Append it to a URL with '?' or '&'.
func Sign(key []byte, action, streamKey string, expires time.Time) string {
	exp := expires.Unix()
	return QueryParam + "=" + strconv.FormatInt(exp, 10) + "-" + hex.EncodeToString(mac(key, action, streamKey, exp))
}

// Verify checks that query (a URL query string, with or without a leading
// '?'; other parameters are ignored) holds a token granting action on
// streamKey at time now. streamKey is the bare "app/name", without query.
// It returns nil, or an error wrapping ErrMissing, ErrMalformed,
// ErrBadSignature or ErrExpired. The signature is checked before the expiry,
// so a tampered token is never reported as merely expired.
func Verify(key []byte, action, streamKey, query string, now time.Time) error {
	token, err := TokenOf(query)
	if err != nil {
		return err
	}
	return VerifyToken(key, action, streamKey, token, now)
}

// VerifyToken is Verify of a token already taken from its URL (TokenOf)
// or from an SRT streamid; "" is ErrMissing.
func VerifyToken(key []byte, action, streamKey, token string, now time.Time) error {
	if len(key) == 0 {
		return errors.New("auth: no key loaded: set auth.key_file")
	}
	if action != ActionPublish && action != ActionPlay {
		return fmt.Errorf("auth: unknown action %q: want %q or %q", action, ActionPublish, ActionPlay)
	}
	expires, sig, err := parseToken(token)
	if err != nil {
		return err
	}
	want := mac(key, action, streamKey, expires.Unix())
	if !hmac.Equal(sig, want) {
		return fmt.Errorf("%s %s: %w", action, streamKey, ErrBadSignature)
	}
	if !now.Before(expires) {
		return fmt.Errorf("%s %s: expired at %s: %w", action, streamKey, expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// TokenOf returns the token parameter of a URL query string (a leading
// '?' is allowed), unescaped; "" when there is none. A query that holds
// it twice is ErrMalformed: one grant, one reading.
func TokenOf(query string) (string, error) {
	query = strings.TrimPrefix(query, "?")
	var val string
	found := false
	for part := range strings.SplitSeq(query, "&") {
		name, v, _ := strings.Cut(part, "=")
		if name != QueryParam {
			continue
		}
		if found {
			return "", fmt.Errorf("%w (the token parameter appears more than once)", ErrMalformed)
		}
		found = true
		if u, uerr := url.QueryUnescape(v); uerr == nil {
			v = u
		}
		val = v
	}
	return val, nil
}

// ParseQuery extracts the token from a URL query string (a leading '?' is
// allowed) and returns its expiry and raw signature bytes. It does not
// check the signature. A query without a token gives ErrMissing; a token
// that is not "<unix seconds>-<64 hex digits>" in its one canonical form
// (no leading zeros, lowercase hex), or appears twice, gives ErrMalformed.
func ParseQuery(query string) (expires time.Time, sig []byte, err error) {
	token, err := TokenOf(query)
	if err != nil {
		return time.Time{}, nil, err
	}
	return parseToken(token)
}

func parseToken(val string) (expires time.Time, sig []byte, err error) {
	if val == "" {
		return time.Time{}, nil, ErrMissing
	}
	expStr, sigHex, ok := strings.Cut(val, "-")
	if !ok || len(expStr) == 0 || len(expStr) > 19 || len(sigHex) != sigHexLen {
		return time.Time{}, nil, ErrMalformed
	}
	for i := 0; i < len(expStr); i++ {
		if expStr[i] < '0' || expStr[i] > '9' {
			return time.Time{}, nil, ErrMalformed
		}
	}
	exp, perr := strconv.ParseInt(expStr, 10, 64)
	if perr != nil || strconv.FormatInt(exp, 10) != expStr {
		// one grant, one spelling: "0170…" would verify like "170…"
		return time.Time{}, nil, fmt.Errorf("%w (the expiry must be written without leading zeros)", ErrMalformed)
	}
	for i := 0; i < len(sigHex); i++ {
		if c := sigHex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return time.Time{}, nil, fmt.Errorf("%w (the signature is lowercase hex)", ErrMalformed)
		}
	}
	sig, herr := hex.DecodeString(sigHex)
	if herr != nil {
		return time.Time{}, nil, ErrMalformed
	}
	return time.Unix(exp, 0), sig, nil
}

// SplitStreamQuery splits "live/cam1?token=…" into the stream key and the
// query (without '?'), as RTMP clients send the query inside the stream
// name and SRT clients inside the streamid.
func SplitStreamQuery(s string) (streamKey, query string) {
	streamKey, query, _ = strings.Cut(s, "?")
	return streamKey, query
}

func mac(key []byte, action, streamKey string, expires int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(action))
	m.Write([]byte{'|'})
	m.Write([]byte(streamKey))
	m.Write([]byte{'|'})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}
