package agent

import (
	"strings"
	"testing"
	"time"
)

// TestSRTURLRefusedAtCreate: an srt URL that the connect would refuse (a
// port out of range, a latency or passphrase libsrt does not take, a key
// it does not know) is refused when the flow, relay or task is created,
// with the field and the query key named, and nothing is kept.
func TestSRTURLRefusedAtCreate(t *testing.T) {
	o := startObjAgent(t, nil)
	now := time.Now().UTC()
	const sid = "streamid=publish:a/b"
	bad := []struct{ name, url, want string }{
		{"port out of range", "srt://127.0.0.1:70000?" + sid, "port 70000 is outside 1..65535"},
		{"latency out of range", "srt://127.0.0.1:9000?" + sid + "&latency=90000", `latency="90000" is not a number in 0..60000`},
		{"short passphrase", "srt://127.0.0.1:9000?" + sid + "&passphrase=short", "passphrase must be 10 to 80 characters"},
		{"unknown key", "srt://127.0.0.1:9000?" + sid + "&lantency=200", `unknown key "lantency"`},
	}
	objects := []struct {
		kind, path, field string
		body              func(url string) map[string]any
	}{
		{"flow output", "/v1/flows", "outputs[0].url", func(u string) map[string]any {
			return map[string]any{"id": "bad", "source": map[string]any{"type": "rtmp-push", "stream": "live/bad"},
				"outputs": []any{map[string]any{"name": "out", "type": "srt-caller", "url": u}}}
		}},
		{"flow source", "/v1/flows", "source.url", func(u string) map[string]any {
			return map[string]any{"id": "bad", "source": map[string]any{"type": "srt-caller", "url": strings.Replace(u, "publish:", "read:", 1)},
				"outputs": []any{map[string]any{"name": "web", "type": "httpflv"}}}
		}},
		{"relay destination", "/v1/relays", "url", func(u string) map[string]any {
			return map[string]any{"id": "bad", "pattern": "live/*", "url": u, "start_time": now.Add(-time.Minute), "end_time": now.Add(time.Hour)}
		}},
		{"task destination", "/v1/tasks", "destination.url", func(u string) map[string]any {
			return map[string]any{"id": "bad", "source": map[string]any{"url": "rtmp://127.0.0.1:1935/live/in"}, "destination": map[string]any{"url": u}}
		}},
	}
	for _, ob := range objects {
		for _, c := range bad {
			t.Run(ob.kind+"/"+c.name, func(t *testing.T) {
				var e apiError
				if st := o.call(t, "POST", ob.path, testToken, ob.body(c.url), &e); st != 400 || e.Field != ob.field || !strings.Contains(e.Message, c.want) {
					t.Fatalf("create: %d %+v, want 400 on %s saying %q", st, e, ob.field, c.want)
				}
				if st := o.call(t, "GET", ob.path+"/bad", testToken, nil, nil); st != 404 {
					t.Errorf("refused object kept: GET %d", st)
				}
			})
		}
	}
}
