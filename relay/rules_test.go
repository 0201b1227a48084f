package relay

import (
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
)

func TestValidateAndMatch(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ok := Spec{ID: "r", Pattern: "live/*", URL: "rtmp://h/a/b", Start: now, End: now.Add(time.Hour)}
	cases := []struct {
		name  string
		edit  func(s *Spec)
		field string
	}{
		{"ok", func(*Spec) {}, ""},
		{"srt url", func(s *Spec) { s.URL = "srt://h:9000?streamid=publish:a/b" }, ""},
		{"window just under 7 days", func(s *Spec) { s.End = s.Start.Add(MaxWindow - time.Second) }, ""},
		{"window 7 days", func(s *Spec) { s.End = s.Start.Add(MaxWindow) }, "end_time"},
		{"end in the past", func(s *Spec) { s.Start, s.End = now.Add(-2*time.Hour), now.Add(-time.Hour) }, "end_time"},
		{"end before start", func(s *Spec) { s.Start = now.Add(2 * time.Hour) }, "end_time"},
		{"pattern without app", func(s *Spec) { s.Pattern = "*" }, "pattern"},
		{"pattern bad glob", func(s *Spec) { s.Pattern = "live/[" }, "pattern"},
		{"pattern too long", func(s *Spec) { s.Pattern = "live/" + strings.Repeat("*", 300) }, "pattern"},
		{"http url", func(s *Spec) { s.URL = "http://h/a" }, "url"},
		{"short passphrase", func(s *Spec) { s.URL = "srt://h:9000?streamid=publish:a/b"; s.Passphrase = "short" }, "passphrase"},
		{"srt passphrase and key length", func(s *Spec) {
			s.URL, s.Passphrase, s.PBKeyLen, s.LatencyMS = "srt://h:9000?streamid=publish:a/b", "0123456789ab", 32, 300
		}, ""},
		{"passphrase on an rtmp url", func(s *Spec) { s.Passphrase = "0123456789ab" }, "passphrase"},
		{"latency on an rtmp url", func(s *Spec) { s.LatencyMS = 200 }, "latency_ms"},
		{"key length without passphrase", func(s *Spec) { s.URL = "srt://h:9000?streamid=publish:a/b"; s.PBKeyLen = 16 }, "pbkeylen"},
		{"rtmp without app and stream", func(s *Spec) { s.URL = "rtmp://h:1935" }, "url"},
		{"rtmp without stream", func(s *Spec) { s.URL = "rtmp://h:1935/live" }, "url"},
		{"rtmp without stream, trailing slash", func(s *Spec) { s.URL = "rtmp://h:1935/live/" }, "url"},
		{"rtmps complete", func(s *Spec) { s.URL = "rtmps://h:443/live/key?sign=x" }, ""},
		{"srt without streamid", func(s *Spec) { s.URL = "srt://h:9000" }, "url"},
		{"srt without port", func(s *Spec) { s.URL = "srt://h?streamid=publish:a/b" }, "url"},
		{"srt empty streamid", func(s *Spec) { s.URL = "srt://h:9000?streamid=" }, "url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.edit(&s)
			err := s.Validate(now)
			got := ""
			if err != nil {
				got = lifecycle.AsProblem(err).Field
			}
			if got != c.field {
				t.Fatalf("field %q (%v), want %q", got, err, c.field)
			}
		})
	}
	t.Run("refusal says what to add", func(t *testing.T) {
		for url, want := range map[string]string{
			"rtmp://h:1935": "add them after the host, as in /live/STREAM-KEY",
			"srt://h:9000":  "add ?streamid=publish:app/name",
		} {
			s := ok
			s.URL = url
			if err := s.Validate(now); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want it to say %q", url, err, want)
			}
		}
	})
	for key, want := range map[string]bool{"live/cam": true, "live/a.b": true, "other/cam": false, "live/cam/x": false} {
		if ok.Matches(key) != want {
			t.Errorf("Matches(%q) = %v", key, !want)
		}
	}
}
