package api

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// TestMaskLogAttr: a secret in a log attribute is masked whatever its
// kind: a string, a passphrase key, an error, a Stringer (a *url.URL),
// a list of URLs.
func TestMaskLogAttr(t *testing.T) {
	u, _ := url.Parse("rtmp://cdn.example/live/secret-key-123?token=1-abcdef")
	for _, a := range []slog.Attr{
		slog.String("url", "rtmp://cdn.example/live/secret-key-123"),
		slog.String("passphrase", "secret-key-123"),
		slog.Any("err", errors.New("dial rtmp://cdn.example/live/secret-key-123: refused")),
		slog.Any("target", u),
		slog.Any("urls", []string{"srt://h:1?streamid=publish:live/secret-key-123"}),
	} {
		got := MaskLogAttr(nil, a)
		s := got.Value.String()
		if strings.Contains(s, "secret-key-123") || strings.Contains(s, "abcdef") {
			t.Errorf("%s = %q: the secret shows", a.Key, s)
		}
		if a.Key != "passphrase" && !strings.Contains(s, "cdn.example") && !strings.Contains(s, "srt://h:1") {
			t.Errorf("%s = %q: more than the secret is gone", a.Key, s)
		}
	}
}
