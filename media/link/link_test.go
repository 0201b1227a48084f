package link

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"plain", "srt://h:1?streamid=publish:live/x", "srt://h:1?streamid=publish:live/x"},
		{"passphrase", "srt://h:1?streamid=publish:live/x&passphrase=topsecret123", "srt://h:1?streamid=publish:live/x&passphrase=xxxxx"},
		{"token in query", "rtmp://h/live/x?token=abc&x=1", "rtmp://h/live/x?token=xxxxx&x=1"},
		{"token in streamid", "srt://h:1?streamid=publish:live/x?token=abc", "srt://h:1?streamid=publish:live/x?token=xxxxx"},
		{"encoded token in streamid", "srt://h:1?streamid=publish%3Alive%2Fx%3Ftoken%3Dabc", "srt://h:1?streamid=publish%3Alive%2Fx%3Ftoken%3Dxxxxx"},
		{"access control t", "srt://h:1?streamid=#!::r=live/x,m=publish,t=abc", "srt://h:1?streamid=#!::r=live/x,m=publish,t=xxxxx"},
		{"userinfo", "rtmp://u:pw@h/live/x", "rtmp://u:xxxxx@h/live/x"},
		{"format is not t", "http://h/live/x.flv?format=flv", "http://h/live/x.flv?format=flv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Redact(c.in); got != c.want {
				t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		fails int
		want  time.Duration
	}{{1, 500 * time.Millisecond}, {2, time.Second}, {3, 2 * time.Second}, {5, 8 * time.Second}, {6, 10 * time.Second}, {100, 10 * time.Second}}
	for _, c := range cases {
		if got := backoff(500*time.Millisecond, 10*time.Second, c.fails); got != c.want {
			t.Errorf("backoff after %d fails = %s, want %s", c.fails, got, c.want)
		}
	}
}

func TestSRTConfig(t *testing.T) {
	cases := []struct {
		name    string
		t       Target
		wantErr string
		check   func(t *testing.T, sid, pass string, keyLen, tos int, lat, idle time.Duration)
	}{
		{"defaults", Target{URL: "srt://h:9000?streamid=publish:live/x"}, "", func(t *testing.T, sid, pass string, keyLen, tos int, lat, idle time.Duration) {
			if sid != "publish:live/x" || pass != "" || tos != 0 || lat != DefaultLatency || idle != DefaultPeerIdleTimeout {
				t.Errorf("got streamid %q pass %q tos %d latency %s idle %s", sid, pass, tos, lat, idle)
			}
		}},
		{"streamid with its own query", Target{URL: "srt://h:9000?streamid=publish:live/x%3Ftoken%3Dabc"}, "", func(t *testing.T, sid, _ string, _, _ int, _, _ time.Duration) {
			if sid != "publish:live/x?token=abc" {
				t.Errorf("streamid %q", sid)
			}
		}},
		{"target settings", Target{URL: "srt://h:9000?streamid=read:live/x", Passphrase: pass, PBKeyLen: 32, DSCP: 46, Latency: 300 * time.Millisecond, PeerIdleTimeout: time.Second}, "",
			func(t *testing.T, _, p string, keyLen, tos int, lat, idle time.Duration) {
				if p != pass || keyLen != 32 || tos != 46<<2 || lat != 300*time.Millisecond || idle != time.Second {
					t.Errorf("got pass %q keylen %d tos %d latency %s idle %s", p, keyLen, tos, lat, idle)
				}
			}},
		{"passphrase from the URL", Target{URL: "srt://h:9000?streamid=read:live/x&passphrase=" + pass + "&pbkeylen=24"}, "", func(t *testing.T, _, p string, keyLen, _ int, _, _ time.Duration) {
			if p != pass || keyLen != 24 {
				t.Errorf("got pass %q keylen %d", p, keyLen)
			}
		}},
		{"no streamid", Target{URL: "srt://h:9000"}, "no streamid", nil},
		{"no port", Target{URL: "srt://h?streamid=read:live/x"}, "no port", nil},
		{"short passphrase", Target{URL: "srt://h:9000?streamid=read:live/x", Passphrase: "short"}, "10 to 80", nil},
		{"bad key length", Target{URL: "srt://h:9000?streamid=read:live/x", Passphrase: pass, PBKeyLen: 20}, "pbkeylen", nil},
		{"bad dscp", Target{URL: "srt://h:9000?streamid=read:live/x", DSCP: 64}, "dscp", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.Parse(c.t.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg, _, err := srtConfig(c.t, u, "read")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), pass) {
					t.Errorf("the error shows the passphrase: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg.StreamID, cfg.Passphrase, cfg.PBKeyLen, cfg.IPTOS, cfg.Latency, cfg.PeerIdleTimeout)
		})
	}
}

func TestRTMPURL(t *testing.T) {
	cases := []struct {
		in, addr, app, name, tc, err string
	}{
		{in: "rtmp://h/live/x", addr: "h:1935", app: "live", name: "x", tc: "rtmp://h/live"},
		{in: "rtmp://h:19350/live/x?key=1", addr: "h:19350", app: "live", name: "x?key=1", tc: "rtmp://h:19350/live"},
		{in: "rtmp://h/live/sub/x", addr: "h:1935", app: "live", name: "sub/x", tc: "rtmp://h/live"},
		{in: "rtmp://h/live", err: "want rtmp://"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			u, _ := url.Parse(c.in)
			addr, app, name, tc, err := rtmpURL(u)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || addr != c.addr || app != c.app || name != c.name || tc != c.tc {
				t.Errorf("got %q %q %q %q %v", addr, app, name, tc, err)
			}
		})
	}
}
