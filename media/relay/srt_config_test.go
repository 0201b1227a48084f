package relay

import (
	"net/url"
	"testing"
	"time"
)

func TestSRTConnectTimeout(t *testing.T) {
	cases := []struct {
		name string
		rtt  time.Duration // 0 = unknown
		want time.Duration // libsrt's SRTO_CONNTIMEO
	}{
		{"RTT unknown: the 3s default", 0, 3 * time.Second},
		{"near peer: the 1s floor", 4 * time.Millisecond, time.Second},
		{"150 ms", 150 * time.Millisecond, time.Second},
		{"400 ms", 400 * time.Millisecond, 1600 * time.Millisecond},
		{"far peer: the 3s cap", time.Second, 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := Target{URL: "srt://h:9000?streamid=read:live/x", ConnectTimeout: ConnectTimeoutFor(c.rtt)}
			u, _ := url.Parse(tg.URL)
			cfg, _, err := srtConfig(tg, u, "read")
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnectTimeout != c.want {
				t.Errorf("ConnectTimeout = %s, want %s", cfg.ConnectTimeout, c.want)
			}
		})
	}
}
