package api

import (
	"encoding/json"
	"testing"
)

// TestMask: answers and log lines never show a stream key or passphrase,
// and a client that sends a masked value back keeps the secret.
func TestMask(t *testing.T) {
	urls := []struct{ name, in, want string }{
		{"rtmp stream key", "rtmp://a.rtmp.youtube.com/live2/KEY", "rtmp://a.rtmp.youtube.com/live2/********"},
		{"rtmp without a key", "rtmp://example.com:1935", "rtmp://example.com:1935"},
		{"srt streamid with a mode", "srt://10.0.0.2:9000?streamid=publish:live/cam", "srt://10.0.0.2:9000?streamid=publish:********"},
		{"srt streamid without a mode", "srt://10.0.0.2:9000?streamid=abc&latency=200", "srt://10.0.0.2:9000?streamid=********&latency=200"},
		{"not a URL", "live/cam", "live/cam"},
	}
	for _, tt := range urls {
		t.Run(tt.name, func(t *testing.T) {
			if got := maskURL(tt.in); got != tt.want {
				t.Errorf("maskURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			s := maskURL(tt.in)
			if unmaskURL(&s, tt.in); s != tt.in {
				t.Errorf("unmaskURL of the masked form = %q, want %q back", s, tt.in)
			}
		})
	}
	t.Run("log line", func(t *testing.T) {
		if got, want := MaskText(`push to "rtmp://h/app/KEY" failed`), `push to "rtmp://h/app/********" failed`; got != want {
			t.Errorf("MaskText = %q, want %q", got, want)
		}
	})
	t.Run("answer", func(t *testing.T) {
		in := map[string]any{"source": map[string]any{"passphrase": "0123456789ab", "url": "rtmp://h/app/KEY"},
			"outputs": []any{map[string]any{"read_passphrase": "0123456789ab", "name": "players"}}}
		got, _ := json.Marshal(maskAnswer(in))
		want := `{"outputs":[{"name":"players","read_passphrase":"********"}],"source":{"passphrase":"********","url":"rtmp://h/app/********"}}`
		if string(got) != want {
			t.Errorf("maskAnswer = %s\nwant %s", got, want)
		}
	})
}
