package link

import (
	"net/url"
	"strings"
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

// TestSRTURLNumbers: latency and pbkeylen in a target URL are used, and
// one that is not a number is refused with the key's name, not ignored.
// The errors hide the passphrase (Redact).
func TestSRTURLNumbers(t *testing.T) {
	cases := []struct {
		query   string
		lat     time.Duration
		keyLen  int
		wantErr string
	}{
		{query: "latency=300", lat: 300 * time.Millisecond},
		{query: "passphrase=0123456789abc&pbkeylen=32", lat: DefaultLatency, keyLen: 32},
		{query: "latency=0", lat: DefaultLatency},
		{query: "latency=300ms", wantErr: `latency="300ms" is not a number`},
		{query: "latency=-5", wantErr: `latency="-5" is not a number`},
		{query: "passphrase=0123456789abc&pbkeylen=x", wantErr: `pbkeylen="x" is not a number`},
		{query: "passphrase=0123456789abc&pbkeylen=20", wantErr: `pbkeylen 20 is not 16, 24 or 32`},
		{query: "passphrase=short", wantErr: `passphrase must be 10 to 80 characters (got 5)`},
	}
	for _, c := range cases {
		tg := Target{URL: "srt://h:9000?streamid=read:live/x&" + c.query}
		u, _ := url.Parse(tg.URL)
		cfg, _, err := srtConfig(tg, u, "read")
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "0123456789abc") {
				t.Errorf("%s: error %v, want %q", c.query, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.query, err)
			continue
		}
		if cfg.Latency != c.lat || cfg.PBKeyLen != c.keyLen {
			t.Errorf("%s: latency %s, pbkeylen %d; want %s, %d", c.query, cfg.Latency, cfg.PBKeyLen, c.lat, c.keyLen)
		}
	}
}

// TestSRTEveryLossReport: a backbone target's retransmission rule reaches
// the caller's options; other targets keep libsrt's default.
func TestSRTEveryLossReport(t *testing.T) {
	for _, every := range []bool{false, true} {
		tg := Target{URL: "srt://h:9000?streamid=publish:live/x", EveryLossReport: every}
		u, _ := url.Parse(tg.URL)
		cfg, _, err := srtConfig(tg, u, "publish")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EveryLossReport != every {
			t.Errorf("target EveryLossReport %v: options have %v", every, cfg.EveryLossReport)
		}
	}
}
