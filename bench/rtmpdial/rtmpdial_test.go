package rtmpdial

import "testing"

func TestParseURL(t *testing.T) {
	cases := []struct {
		name, url string
		want      Target
		bad       bool
	}{
		{"with port", "rtmp://127.0.0.1:1936/live/bench", Target{Addr: "127.0.0.1:1936", App: "live", Name: "bench", TCURL: "rtmp://127.0.0.1:1936/live"}, false},
		{"default port", "rtmp://example.test/live/x", Target{Addr: "example.test:1935", App: "live", Name: "x", TCURL: "rtmp://example.test:1935/live"}, false},
		{"query kept on the name", "rtmp://h:1/app/s?token=a", Target{Addr: "h:1", App: "app", Name: "s?token=a", TCURL: "rtmp://h:1/app"}, false},
		{"nested app", "rtmp://h:1/a/b/s", Target{Addr: "h:1", App: "a/b", Name: "s", TCURL: "rtmp://h:1/a/b"}, false},
		{"no name", "rtmp://h:1/live", Target{}, true},
		{"http", "http://h:1/live/x", Target{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseURL(c.url)
			if c.bad {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %+v, want an error", c.url, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseURL(%q) = %+v, %v; want %+v", c.url, got, err, c.want)
			}
		})
	}
}
