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

// TestURLRefusalMasksSecrets: a URL refused for having no host, or for
// not parsing, is quoted in the answer with its password and tokens
// masked, as the logs quote it.
func TestURLRefusalMasksSecrets(t *testing.T) {
	o := startObjAgent(t, nil)
	const secret = "hunter2-secret"
	cases := []struct{ name, url, want string }{
		{"password, no host", "https://admin:" + secret + "@/hook", "has no host"},
		{"token, no host", "https:///hook?token=" + secret, "has no host"},
		{"token, not a URL", "https://a b/hook?token=" + secret, "is not a URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bodies := map[string]map[string]any{
				"/v1/tasks": {"id": "bad", "callback": c.url, "source": map[string]any{"url": "rtmp://127.0.0.1:1935/live/in"},
					"destination": map[string]any{"url": "rtmp://127.0.0.1:1935/live/out"}},
				"/v1/flows": {"id": "bad", "source": map[string]any{"type": "httpflv-pull", "url": c.url},
					"outputs": []any{map[string]any{"name": "web", "type": "httpflv"}}},
			}
			for path, body := range bodies {
				var e apiError
				if st := o.call(t, "POST", path, testToken, body, &e); st != 400 || !strings.Contains(e.Message, c.want) {
					t.Fatalf("POST %s: %d %+v, want 400 saying %q", path, st, e, c.want)
				}
				if strings.Contains(e.Message, secret) {
					t.Errorf("POST %s: the refusal quotes the secret: %s", path, e.Message)
				}
			}
		})
	}
}
