package task

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media/unit"
)

func TestValidateConsoleRules(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	base := func() Spec {
		return Spec{ID: "t", Source: Source{Playlist: []string{"/srv/a.mp4"}}, Destination: Destination{URL: "rtmp://h/live/t"}}
	}
	cases := []struct {
		name  string
		edit  func(s *Spec)
		field string
	}{
		{"ok", func(*Spec) {}, ""},
		{"named", func(s *Spec) { s.Name = "Morning show 朝" }, ""},
		{"name too long", func(s *Spec) { s.Name = strings.Repeat("n", MaxName+1) }, "name"},
		{"name with a newline", func(s *Spec) { s.Name = "a\nb" }, "name"},
		{"playlist loop 3", func(s *Spec) { s.Loop = 3 }, ""},
		{"playlist loop forever", func(s *Spec) { s.Loop = -1 }, ""},
		{"live source plays once", func(s *Spec) { s.Source = Source{URL: "rtmp://h/live/src"} }, ""},
		{"live source loop 2", func(s *Spec) { s.Source = Source{URL: "rtmp://h/live/src"}; s.Loop = 2 }, "loop"},
		{"live source loop forever", func(s *Spec) { s.Source = Source{URL: "srt://h:9000?streamid=read:live/src"}; s.Loop = -1 }, "loop"},
		{"live srt source without streamid", func(s *Spec) { s.Source = Source{URL: "srt://h:9000"} }, "source.url"},
		{"destination without stream", func(s *Spec) { s.Destination.URL = "rtmp://h:1935/live" }, "destination.url"},
		{"srt destination without streamid", func(s *Spec) { s.Destination.URL = "srt://h:9000" }, "destination.url"},
		{"srt destination with passphrase", func(s *Spec) {
			s.Destination = Destination{URL: "srt://h:9000?streamid=publish:a/b", Passphrase: "0123456789ab", PBKeyLen: 24, LatencyMS: 300}
		}, ""},
		{"passphrase on an rtmp destination", func(s *Spec) { s.Destination.Passphrase = "0123456789ab" }, "destination.passphrase"},
		{"latency on an rtmp destination", func(s *Spec) { s.Destination.LatencyMS = 300 }, "destination.latency_ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base()
			c.edit(&s)
			s.Normalize()
			got := ""
			if err := s.Validate(now); err != nil {
				got = lifecycle.AsProblem(err).Field
			}
			if got != c.field {
				t.Fatalf("field %q, want %q", got, c.field)
			}
		})
	}
	s := base()
	s.Normalize()
	if s.Name != "t" {
		t.Errorf("unnamed task's name %q, want its id", s.Name)
	}
}

func TestFilter(t *testing.T) {
	v := View{Spec: Spec{ID: "a", Name: "Show", Destination: Destination{URL: "rtmp://h/live/x"}}}
	cases := []struct {
		name  string
		query string
		match bool
		field string // a refused query's field
	}{
		{"none", "", true, ""},
		{"id", "id=a", true, ""},
		{"other id", "id=b", false, ""},
		{"name", "name=Show", true, ""},
		{"name is exact", "name=Sho", false, ""},
		{"destination", "destination=" + url.QueryEscape("rtmp://h/live/x"), true, ""},
		{"all three", "id=a&name=Show&destination=" + url.QueryEscape("rtmp://h/live/x"), true, ""},
		{"one of three differs", "id=a&name=Other", false, ""},
		{"unknown key", "state=Running", false, "state"},
		{"key given twice", "id=a&id=b", false, "id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, _ := url.ParseQuery(c.query)
			f, err := ParseFilter(q)
			if c.field != "" {
				if err == nil || lifecycle.AsProblem(err).Field != c.field {
					t.Fatalf("ParseFilter(%q) = %v, want a refusal on %q", c.query, err, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Match(&v) != c.match {
				t.Fatalf("Match = %v, want %v", !c.match, c.match)
			}
		})
	}
}

func TestCheckAudio(t *testing.T) {
	cases := []struct {
		name string
		ci   unit.CodecInfo
		ok   bool
	}{
		{"44.1 kHz", unit.CodecInfo{Audio: "AAC", SampleRate: 44100}, true},
		{"16 kHz", unit.CodecInfo{Audio: "AAC", SampleRate: 16000}, true},
		{"22.05 kHz", unit.CodecInfo{Audio: "AAC", SampleRate: 22050}, true},
		{"48 kHz", unit.CodecInfo{Audio: "AAC", SampleRate: 48000}, false},
		{"8 kHz", unit.CodecInfo{Audio: "AAC", SampleRate: 8000}, false},
		{"video only", unit.CodecInfo{Video: "H264"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkAudio(c.ci)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrSampleRate)) {
				t.Fatalf("checkAudio = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestItemErrorNamesTheURL(t *testing.T) {
	cases := []struct {
		name, item, local string
		err               error
		want              string
	}{
		{"cache path replaced", "http://h/a.mp4", "/var/lib/relaymesh/task-cache/ab12.mp4",
			errors.New("/var/lib/relaymesh/task-cache/ab12.mp4: unsupported codec"), "source.playlist[2]: http://h/a.mp4: unsupported codec"},
		{"no path in the error", "http://h/a.mp4", "/cache/x.mp4", ErrSampleRate, "source.playlist[2]: http://h/a.mp4: " + ErrSampleRate.Error()},
		{"local item keeps its path", "/srv/a.mp4", "/srv/a.mp4", errors.New("/srv/a.mp4: too short"), "source.playlist[2]: /srv/a.mp4: too short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := itemError(2, c.item, c.local, c.err)
			if err.Error() != c.want || !errors.Is(err, c.err) {
				t.Fatalf("%q (unwraps: %v), want %q", err, errors.Is(err, c.err), c.want)
			}
		})
	}
}
