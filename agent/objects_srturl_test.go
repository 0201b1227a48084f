package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/relay"
	"github.com/relaymesh/relaymesh/task"
)

// TestSRTURLRefusedAtCreate: an srt URL that the connect would refuse (a
// port out of range, a latency or passphrase libsrt does not take, a key
// it does not know) is refused when the flow, relay or task is created,
// with the field and the query key named, and nothing is kept.
func TestSRTURLRefusedAtCreate(t *testing.T) {
	o := startObjAgent(t, nil)
	c := o.client()
	now := time.Now().UTC()
	const sid = "streamid=publish:a/b"
	bad := []struct{ name, url, want string }{
		{"port out of range", "srt://127.0.0.1:70000?" + sid, "port 70000 is outside 1..65535"},
		{"latency out of range", "srt://127.0.0.1:9000?" + sid + "&latency=90000", `latency="90000" is not a number in 0..60000`},
		{"short passphrase", "srt://127.0.0.1:9000?" + sid + "&passphrase=short", "passphrase must be 10 to 80 characters"},
		{"unknown key", "srt://127.0.0.1:9000?" + sid + "&lantency=200", `unknown key "lantency"`},
	}
	objects := []struct {
		kind, field string
		create      func(ctx context.Context, url string) error
		get         func(ctx context.Context) error
	}{
		{"flow output", "outputs[0].url", func(ctx context.Context, u string) error {
			_, err := c.Flows().Create(ctx, flow.Spec{ID: "bad", Source: flow.Source{Type: flow.SrcRTMPPush, Stream: "live/bad"},
				Outputs: []flow.Output{{Name: "out", Type: flow.OutSRTCaller, URL: u}}})
			return err
		}, func(ctx context.Context) error { _, err := c.Flows().Get(ctx, "bad"); return err }},
		{"flow source", "source.url", func(ctx context.Context, u string) error {
			_, err := c.Flows().Create(ctx, flow.Spec{ID: "bad", Source: flow.Source{Type: flow.SrcSRTCaller, URL: strings.Replace(u, "publish:", "read:", 1)},
				Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}})
			return err
		}, func(ctx context.Context) error { _, err := c.Flows().Get(ctx, "bad"); return err }},
		{"relay destination", "url", func(ctx context.Context, u string) error {
			_, err := c.Relays().Create(ctx, relay.Spec{ID: "bad", Pattern: "live/*", URL: u, Start: now.Add(-time.Minute), End: now.Add(time.Hour)})
			return err
		}, func(ctx context.Context) error { _, err := c.Relays().Get(ctx, "bad"); return err }},
		{"task destination", "destination.url", func(ctx context.Context, u string) error {
			_, err := c.Tasks().Create(ctx, task.Spec{ID: "bad", Source: task.Source{URL: "rtmp://127.0.0.1:1935/live/in"}, Destination: task.Destination{URL: u}})
			return err
		}, func(ctx context.Context) error { _, err := c.Tasks().Get(ctx, "bad"); return err }},
	}
	for _, ob := range objects {
		for _, b := range bad {
			t.Run(ob.kind+"/"+b.name, func(t *testing.T) {
				err := ob.create(t.Context(), b.url)
				if p := client.ProblemOf(err); p == nil || p.Status != 400 || p.Field != ob.field || !strings.Contains(p.Message, b.want) {
					t.Fatalf("create: %v, want 400 on %s saying %q", err, ob.field, b.want)
				}
				if err := ob.get(t.Context()); !client.IsNotFound(err) {
					t.Errorf("refused object kept: GET answers %v, want 404", err)
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
	c := o.client()
	const secret = "hunter2-secret"
	cases := []struct{ name, url, want string }{
		{"password, no host", "https://admin:" + secret + "@/hook", "has no host"},
		{"token, no host", "https:///hook?token=" + secret, "has no host"},
		{"token, not a URL", "https://a b/hook?token=" + secret, "is not a URL"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			creates := map[string]func(ctx context.Context) error{
				"task callback": func(ctx context.Context) error {
					_, err := c.Tasks().Create(ctx, task.Spec{ID: "bad", Callback: cs.url, Source: task.Source{URL: "rtmp://127.0.0.1:1935/live/in"},
						Destination: task.Destination{URL: "rtmp://127.0.0.1:1935/live/out"}})
					return err
				},
				"flow source": func(ctx context.Context) error {
					_, err := c.Flows().Create(ctx, flow.Spec{ID: "bad", Source: flow.Source{Type: flow.SrcHTTPFLVPull, URL: cs.url},
						Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}})
					return err
				},
			}
			for what, create := range creates {
				err := create(t.Context())
				p := client.ProblemOf(err)
				if p == nil || p.Status != 400 || !strings.Contains(p.Message, cs.want) {
					t.Fatalf("%s: %v, want 400 saying %q", what, err, cs.want)
				}
				if strings.Contains(p.Message, secret) {
					t.Errorf("%s: the refusal quotes the secret: %s", what, p.Message)
				}
			}
		})
	}
}
