package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestObjectsConfig(t *testing.T) {
	head := "version = 1\n[node]\nname = \"n\"\n"
	good := `
[objects]
max_relays = 10
[[flow]]
id = "cam"
start = true
[flow.source]
type = "rtmp-push"
stream = "live/cam"
max_bitrate = "8M"
[flow.backup]
type = "srt-caller"
url = "srt://10.0.0.2:9000?streamid=read:live/cam"
latency = "200ms"
passphrase = "0123456789abc"
[[flow.outputs]]
name = "players"
type = "httpflv"
[[flow.outputs]]
name = "youtube"
type = "rtmp-push"
url = "rtmp://a.rtmp.youtube.com/live2/KEY"
[[relay]]
id = "r"
pattern = "live/*"
url = "rtmp://example.com/app/x"
start_time = 2030-01-01T00:00:00Z
end_time = 2030-01-02T00:00:00Z
[[task]]
id = "loop"
playlist = ["/srv/a.mp4", "https://example.com/b.flv"]
loop = -1
destination = "rtmp://127.0.0.1/live/loop"
callback = "https://example.com/hook"
`
	cases := []struct {
		name, body, want string
	}{
		{"good", good, ""},
		{"output url scheme", strings.Replace(good, "rtmp://a.rtmp.youtube.com/live2/KEY", "http://x/y", 1), `flow[0].outputs[1].url: scheme "http" is not rtmp or rtmps`},
		{"source type", strings.Replace(good, `type = "rtmp-push"`, `type = "webrtc"`, 1), `flow[0].source.type: "webrtc" is not one of`},
		{"backup latency", strings.Replace(good, `latency = "200ms"`, `latency = "20s"`, 1), `flow[0].backup.latency: 20000 is not between 0 and 10000`},
		{"relay window", strings.Replace(good, "2030-01-02T00:00:00Z", "2030-01-09T00:00:00Z", 1), `relay[0].end_time: the window of 192h0m0s is not under 7 days`},
		{"task playlist path", strings.Replace(good, `"/srv/a.mp4"`, `"a.mp4"`, 1), `task[0].playlist[0]: "a.mp4" is neither`},
		{"task destination", strings.Replace(good, `destination = "rtmp://127.0.0.1/live/loop"`, `destination = "udp://x"`, 1), `task[0].destination: scheme "udp"`},
		{"flow source names a flow of another node", good + "[[flow]]\nid = \"chain\"\n[flow.source]\ntype = \"flow\"\nflow = \"elsewhere\"\noutput = \"players\"\nnode = \"sin-1\"\n", ""},
		{"duplicate flow id", good + "[[flow]]\nid = \"cam\"\n[flow.source]\ntype = \"rtmp-push\"\n", `flow[1].id: "cam" is already the id of flow[0]`},
		{"negative limit", strings.Replace(good, "max_relays = 10", "max_relays = -1", 1), `objects.max_relays: -1 is negative`},
		{"unknown key", strings.Replace(good, "loop = -1", "loops = -1", 1), `task[0].loops: unknown key`},
		{"flow start and start_time", strings.Replace(good, "start = true\n", "start = true\nstart_time = 2030-01-01T00:00:00Z\n", 1), `flow[0].start: start = true runs the flow at once; start_time schedules it`},
		{"flow max_bandwidth", strings.Replace(good, "start = true\n", "start = true\nmax_bandwidth = \"20M\"\n", 1), ""},
		{"flow max_bandwidth not a choice", strings.Replace(good, "start = true\n", "start = true\nmax_bandwidth = \"15M\"\n", 1), `flow[0].max_bandwidth: 15000000 bit/s is not one of 10000000, 20000000 or 50000000 (10, 20 or 50 Mbit/s)`},
		{"output backup_url", strings.Replace(good, `url = "rtmp://a.rtmp.youtube.com/live2/KEY"`, "url = \"rtmp://a.rtmp.youtube.com/live2/KEY\"\nbackup_url = \"rtmp://b.rtmp.youtube.com/live2/KEY\"", 1), ""},
		{"output backup_url incomplete", strings.Replace(good, `url = "rtmp://a.rtmp.youtube.com/live2/KEY"`, "url = \"rtmp://a.rtmp.youtube.com/live2/KEY\"\nbackup_url = \"rtmp://b.rtmp.youtube.com\"", 1), `flow[0].outputs[1].backup_url: "rtmp://b.rtmp.youtube.com" names no app and stream: add them`},
		{"relay url incomplete", strings.Replace(good, `url = "rtmp://example.com/app/x"`, `url = "rtmp://example.com:1935"`, 1), `relay[0].url: "rtmp://example.com:1935" names no app and stream`},
		{"task name", strings.Replace(good, `id = "loop"`, "id = \"loop\"\nname = \"Night loop\"", 1), ""},
		{"task without callback", strings.Replace(good, `callback = "https://example.com/hook"`, "", 1), `task[0].callback: required`},
		{"task without callback, node default", strings.Replace(good, `callback = "https://example.com/hook"`, "", 1) + "[webhooks]\nurl = \"https://example.com/node\"\n", ""},
		{"task loop on a live url", strings.Replace(good, `playlist = ["/srv/a.mp4", "https://example.com/b.flv"]`, `url = "rtmp://example.com/live/src"`, 1), `task[0].loop: -1: loop counts apply to playlists`},
		{"source min_bitrate", strings.Replace(good, `max_bitrate = "8M"`, "max_bitrate = \"8M\"\nmin_bitrate = \"600k\"", 1), ""},
		{"source min_bitrate above max", strings.Replace(good, `max_bitrate = "8M"`, "max_bitrate = \"8M\"\nmin_bitrate = \"9M\"", 1), `flow[0].source.min_bitrate: 9000000 is above max_bitrate 8000000`},
		{"backup max_cc_errors", strings.Replace(good, `latency = "200ms"`, "latency = \"200ms\"\nmax_cc_errors = 20", 1), ""},
		{"source max_cc_errors on rtmp-push", strings.Replace(good, `max_bitrate = "8M"`, "max_bitrate = \"8M\"\nmax_cc_errors = 20", 1), `flow[0].source.max_cc_errors: counts MPEG-TS continuity errors: a rtmp-push source delivers no MPEG-TS`},
		{"backup max_cc_errors negative", strings.Replace(good, `latency = "200ms"`, "latency = \"200ms\"\nmax_cc_errors = -3", 1), `flow[0].backup.max_cc_errors: -3 is negative`},
		{"flow window backwards", strings.Replace(good, "start = true\n", "start_time = 2030-01-02T00:00:00Z\nend_time = 2030-01-01T00:00:00Z\n", 1), `flow[0].end_time: must be after start_time`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "r.toml")
			os.WriteFile(p, []byte(head+c.body), 0o644)
			cfg, err := Load(p)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s := cfg.Flows[0].Spec()
				if s.Backup == nil || s.Backup.LatencyMS != 200 || len(s.Outputs) != 2 || s.Source.MaxBitrate != 8_000_000 ||
					(strings.Contains(c.body, "min_bitrate") && s.Source.MinBitrate != 600_000) ||
					(strings.Contains(c.body, "max_cc_errors") && s.Backup.MaxCCErrors != 20) {
					t.Fatalf("flow spec %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
		})
	}
}

// TestFlowCycles: flows of the file whose flow sources take one another
// round a cycle (directly, through a chain, or through a backup) are
// refused once per cycle, naming the cycle and the keys; chains that end
// at a real source or at a flow not in the file are accepted.
func TestFlowCycles(t *testing.T) {
	push := func(id string) string {
		return "[[flow]]\nid = \"" + id + "\"\n[flow.source]\ntype = \"rtmp-push\"\n[[flow.outputs]]\nname = \"o\"\ntype = \"flow\"\n"
	}
	takes := func(id, from string) string {
		return "[[flow]]\nid = \"" + id + "\"\n[flow.source]\ntype = \"flow\"\nflow = \"" + from + "\"\noutput = \"o\"\n[[flow.outputs]]\nname = \"o\"\ntype = \"flow\"\n"
	}
	withBackup := func(id, from string) string {
		return "[[flow]]\nid = \"" + id + "\"\n[flow.source]\ntype = \"rtmp-push\"\n[flow.backup]\ntype = \"flow\"\nflow = \"" + from + "\"\noutput = \"o\"\n[[flow.outputs]]\nname = \"o\"\ntype = \"flow\"\n"
	}
	cases := []struct {
		name string
		body string
		want []string // nil: accepted
	}{
		{"direct", takes("FlowA", "FlowB") + takes("FlowB", "FlowA"),
			[]string{`flow[0].source.flow: flow cycle FlowA -> FlowB -> FlowA: flow "FlowA" cannot take flow "FlowB"`, "(flow[0] -> flow[1] -> flow[0])"}},
		{"through a chain", push("P") + takes("A", "C") + takes("B", "A") + takes("C", "B"),
			[]string{`flow[1].source.flow: flow cycle A -> C -> B -> A`, "(flow[1] -> flow[3] -> flow[2] -> flow[1])"}},
		{"through a backup", withBackup("A", "B") + takes("B", "A"),
			[]string{`flow[0].backup.flow: flow cycle A -> B -> A`}},
		{"self, said once", takes("A", "A"), []string{`flow[0].source.flow: a flow cannot feed itself`}},
		{"chain to a push source", push("P") + takes("A", "P") + takes("B", "A"), nil},
		{"chain to a flow not in the file", takes("A", "elsewhere") + takes("B", "A"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "r.toml")
			os.WriteFile(p, []byte("version = 1\n[node]\nname = \"n\"\n"+c.body), 0o644)
			_, err := Load(p)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %v\nwant %q", err, w)
				}
			}
			if n := len(Problems(err)); n != 1 {
				t.Errorf("%d problems, want 1 per cycle:\n%v", n, err)
			}
		})
	}
}
