package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/config")

// TestConfigBadFixtures loads each testdata/config/bad/*.toml and compares
// the error text with the .golden beside it (go test -run BadFixtures -update
// rewrites them; read the diff before committing).
func TestConfigBadFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/config/bad/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	files = append(files, "testdata/config/dropin_bad/main.toml")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		if strings.Contains(f, "dropin_bad") {
			name = "dropin_bad"
		}
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(f)
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want an error; got %+v", f, cfg)
			}
			if cfg != nil {
				t.Fatalf("Load returned a config with an error")
			}
			golden := strings.TrimSuffix(f, ".toml") + ".golden"
			got := err.Error() + "\n"
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test -run TestConfigBadFixtures -update)", rerr)
			}
			if got != string(want) {
				t.Fatalf("Load(%s) error:\n%s\nwant:\n%s", f, got, want)
			}
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(line, "testdata/config/") {
					t.Errorf("message does not name its file: %q", line)
				}
			}
		})
	}
}

// TestConfigErrorMessages pins the exact message of each kind of problem,
// written inline so the case reads as what a user sees.
func TestConfigErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // each must be one whole line of the error
	}{
		{name: "unknown key with path and line", toml: "[node]\nsite = \"x\"\nnmae = \"b\"\n",
			want: []string{`c.toml:3: node.nmae: unknown key; did you mean node.name?`}},
		{name: "unknown key in second array entry", toml: "[[srt_stream]]\nkey = \"live/a\"\n[[srt_stream]]\nkey = \"live/b\"\nbogus = 1\n",
			want: []string{`c.toml:5: srt_stream[1].bogus: unknown key`}},
		{name: "key differing in case", toml: "[rtmp]\nLISTEN = \":1935\"\n",
			want: []string{`c.toml:2: rtmp.LISTEN: unknown key; did you mean rtmp.listen?`}},
		{name: "wrong type", toml: "[limits]\nmax_publishers = \"ten\"\n",
			want: []string{`c.toml:2: limits.max_publishers: want integer, got string`}},
		{name: "negative count", toml: "[limits]\nmax_publishers = -1\n",
			want: []string{`c.toml:2: limits.max_publishers: -1 is negative: use 0 for unlimited`}},
		{name: "bare integer duration", toml: "[limits]\nread_timeout = 10\n",
			want: []string{`c.toml:2: limits.read_timeout: want a duration string such as "10s", got integer 10`}},
		{name: "negative bitrate", toml: "[limits]\nmax_bitrate = \"-5M\"\n",
			want: []string{`c.toml:2: limits.max_bitrate: "-5M" is negative`}},
		{name: "bad bitrate unit", toml: "[limits]\nmax_bitrate = \"5X\"\n",
			want: []string{`c.toml:2: limits.max_bitrate: "5X" has unknown unit "X": use k, M or G (bits/s), e.g. "20M" or "800k"`}},
		{name: "bad cidr", toml: "[auth]\npublish_allow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n",
			want: []string{`c.toml:2: auth.publish_allow[1]: "10.0.0.0/33" is not a CIDR: want e.g. "10.0.0.0/8" or "2001:db8::/32"`}},
		{name: "bad listen address", toml: "[rtmp]\nlisten = \"abc\"\n",
			want: []string{`c.toml:2: rtmp.listen: "abc" is not host:port: write e.g. ":1935" or "127.0.0.1:1935", or "" to disable`}},
		{name: "role invalid", toml: "[node]\nrole = \"origin\"\n",
			want: []string{`c.toml:2: node.role: "origin" is not one of standalone, edge, center`}},
		{name: "api token required beyond loopback", toml: "[api]\nlisten = \":9997\"\n",
			want: []string{`c.toml:1: api.token_file: required when api.listen (":9997") is not a loopback address: set token_file, or listen on 127.0.0.1`}},
		{name: "api on loopback needs no token", toml: "[api]\nlisten = \"[::1]:9997\"\n"},
		{name: "api on localhost needs no token", toml: "[api]\nlisten = \"localhost:9997\"\n"},
		{name: "auth key required", toml: "[auth]\nplay = true\n",
			want: []string{"c.toml:1: auth.key_file: required when auth.publish or auth.play is true: point it at a file made with `head -c 32 /dev/urandom | base64 > /etc/relaymesh/auth.key`"}},
		{name: "no per-listener key length: the caller picks it", toml: "[srt]\nread_pbkeylen = 32\n",
			want: []string{`c.toml:2: srt.read_pbkeylen: unknown key`}},
		{name: "passphrase length", toml: "[srt]\npublish_passphrase = \"short\"\n",
			want: []string{`c.toml:2: srt.publish_passphrase: is 5 bytes long: SRT passphrases have 10 to 79`}},
		{name: "srt receive memory too small", toml: "[srt]\nmax_receive_memory = \"512KiB\"\n",
			want: []string{`c.toml:2: srt.max_receive_memory: 512KiB is below 1MiB, too little for a few SRT connections: leave it unset for a quarter of the node's memory`}},
		{name: "srt receive memory not a size", toml: "[srt]\nmax_receive_memory = 1024\n",
			want: []string{`c.toml:2: srt.max_receive_memory: want a size string such as "64KiB", got integer 1024`}},
		{name: "hls part duration bounds", toml: "[hls]\npart_duration = \"10ms\"\n",
			want: []string{`c.toml:2: hls.part_duration: 10ms is outside 50ms..5s`}},
		{name: "hls segment count below the LL-HLS minimum", toml: "[hls]\nsegment_count = 3\n",
			want: []string{`c.toml:2: hls.segment_count: 3 is outside 7..100 (LL-HLS needs at least 7)`}},
		{name: "hls always-on stream key", toml: "[hls]\nalways_on = [\"live/a\", \"nokey\"]\n",
			want: []string{`c.toml:2: hls.always_on[1]: "nokey" is not a stream key: write "app/name", e.g. "live/cam1"`}},
		{name: "hls unknown key", toml: "[hls]\npart_duraton = \"1s\"\n",
			want: []string{`c.toml:2: hls.part_duraton: unknown key; did you mean hls.part_duration?`}},
		{name: "every problem at once", toml: "[node]\nrole = \"x\"\n[limits]\nmax_publishers = -1\n[rtmp]\nlisten = \"abc\"\n",
			want: []string{
				`c.toml:2: node.role: "x" is not one of standalone, edge, center`,
				`c.toml:6: rtmp.listen: "abc" is not host:port: write e.g. ":1935" or "127.0.0.1:1935", or "" to disable`,
				`c.toml:4: limits.max_publishers: -1 is negative: use 0 for unlimited`,
			}},
		// the decoder reports a value its type refuses as a ParseError,
		// like a syntax error; the search went on only past wrong types
		{name: "every decode problem at once", toml: "[rtmp]\nlisten = 1935\n[srt]\nlatency = \"fast\"\n[limits]\nreconnect_grace = \"soon\"\nmax_publishers = -1\n",
			want: []string{
				`c.toml:2: rtmp.listen: want string, got integer`,
				`c.toml:4: srt.latency: "fast" is not a duration: write e.g. "250ms", "10s" or "1m30s"`,
				`c.toml:6: limits.reconnect_grace: "soon" is not a duration: write e.g. "250ms", "10s" or "1m30s"`,
				`c.toml:7: limits.max_publishers: -1 is negative: use 0 for unlimited`,
			}},
		{name: "syntax error with line and column", toml: "[node]\nname = \n",
			want: []string{`c.toml:2:8: expected value but found '\n' instead`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkLoadProblems(t, tc.toml, tc.want)
		})
	}
}

// cfgNormalize clears what legitimately differs between a loaded and a
// built config.
func cfgNormalize(c *Config) *Config {
	cp := *c
	cp.Sources = nil
	return &cp
}

func TestStandaloneExampleIsDefault(t *testing.T) {
	cfg, err := Load("../configs/standalone.toml")
	if err != nil {
		t.Fatal(err)
	}
	// name and data_dir are left empty in both and resolved at run time.
	if cfg.Node.Name != "" || cfg.Node.DataDir != "" {
		t.Fatalf("standalone.toml sets node.name %q / data_dir %q; leave them empty", cfg.Node.Name, cfg.Node.DataDir)
	}
	if got, want := cfgNormalize(cfg), Default(); !reflect.DeepEqual(got, want) {
		t.Fatalf("configs/standalone.toml differs from Default():\n file: %+v\n default: %+v", got, want)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() is invalid: %v", err)
	}
}

// TestShippedConfigsLoad loads every file in configs/ so the examples
// never rot. CheckFiles is skipped: the key files they name exist only on
// real nodes.
func TestShippedConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../configs/*.toml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 example configs, got %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Sources) != 1 || cfg.Sources[0] != f {
				t.Fatalf("Sources = %q", cfg.Sources)
			}
		})
	}
	t.Run("roles", func(t *testing.T) {
		for _, c := range []struct{ file, role, site string }{
			{"../configs/edge.toml", RoleEdge, "sin"},
			{"../configs/center.toml", RoleCenter, "fra"},
		} {
			cfg, err := Load(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Node.Role != c.role || cfg.Node.Site != c.site || !cfg.Auth.Publish || !cfg.Auth.Play || cfg.Auth.KeyFile != "/etc/relaymesh/auth.key" {
				t.Errorf("%s: role %q site %q auth %+v", c.file, cfg.Node.Role, cfg.Node.Site, cfg.Auth)
			}
		}
	})
}

func TestConfigDropIns(t *testing.T) {
	cfg, err := Load("testdata/config/dropin/main.toml")
	if err != nil {
		t.Fatal(err)
	}
	wantSources := []string{
		"testdata/config/dropin/main.toml",
		"testdata/config/dropin/conf.d/10-limits.toml",
		"testdata/config/dropin/conf.d/20-more.toml",
	}
	if !reflect.DeepEqual(cfg.Sources, wantSources) {
		t.Errorf("Sources = %q, want %q (sorted, .toml only)", cfg.Sources, wantSources)
	}
	if cfg.Limits.MaxBitrate != 20_000_000 {
		t.Errorf("max_bitrate = %d, want the drop-in's 20M", cfg.Limits.MaxBitrate)
	}
	if cfg.Limits.MaxPublishers != 10 {
		t.Errorf("max_publishers = %d, want the main file's 10 kept", cfg.Limits.MaxPublishers)
	}
	if !reflect.DeepEqual(cfg.Auth.PublishAllow, []string{"198.51.100.0/24"}) {
		t.Errorf("publish_allow = %q, want the drop-in's list replacing the main one", cfg.Auth.PublishAllow)
	}
	if cfg.Node.LogLevel != "debug" || cfg.Node.Name != "edge-1" {
		t.Errorf("node = %+v", cfg.Node)
	}
	var keys []string
	for _, s := range cfg.SRTStreams {
		keys = append(keys, s.Key)
	}
	if !reflect.DeepEqual(keys, []string{"live/main", "live/backup", "live/third"}) {
		t.Fatalf("srt_stream keys = %q, want entries appended across files", keys)
	}
	// An appended entry does not inherit fields of the entry it follows.
	if got := cfg.SRTStreams; got[0].ReadPassphrase != "main-stream-secret" || got[1].ReadPassphrase != "" ||
		got[1].PublishPassphrase != "0123456789abc" || got[2].ReadPassphrase != "third-stream-secret" {
		t.Errorf("srt_stream entries = %+v", got)
	}
}

func TestConfigExtraPathsAndDefault(t *testing.T) {
	cfg, err := Load()
	if err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("Load() = %+v, %v; want Default()", cfg, err)
	}
	dir := t.TempDir()
	main := filepath.Join(dir, "a.toml")
	extra := filepath.Join(dir, "b.toml")
	os.WriteFile(main, []byte("[rtmp]\nlisten = \":1\"\n"), 0o644)
	os.WriteFile(extra, []byte("[rtmp]\nlisten = \":2\"\n"), 0o644)
	cfg, err = Load(main, extra)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RTMP.Listen != ":2" {
		t.Fatalf("rtmp.listen = %q, want the later file's", cfg.RTMP.Listen)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestConfigTypedValues(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		kind    string // "duration", "bitrate", "size"
		want    int64
		wantErr string
	}{
		{name: "duration ms", in: "250ms", kind: "duration", want: int64(250 * time.Millisecond)},
		{name: "duration compound", in: "1m30s", kind: "duration", want: int64(90 * time.Second)},
		{name: "duration bare int", in: int64(10), kind: "duration", wantErr: `want a duration string such as "10s", got integer 10`},
		{name: "duration float", in: 1.5, kind: "duration", wantErr: `got float 1.5`},
		{name: "duration no unit", in: "10", kind: "duration", wantErr: `"10" is not a duration`},
		{name: "bitrate k", in: "800k", kind: "bitrate", want: 800_000},
		{name: "bitrate M decimal", in: "2.5M", kind: "bitrate", want: 2_500_000},
		{name: "bitrate G", in: "1G", kind: "bitrate", want: 1_000_000_000},
		{name: "bitrate plain", in: "2500000", kind: "bitrate", want: 2_500_000},
		{name: "bitrate empty unlimited", in: "", kind: "bitrate", want: 0},
		{name: "bitrate integer refused", in: int64(2500000), kind: "bitrate", wantErr: `want a bitrate string such as "20M", got integer 2500000`},
		{name: "bitrate lowercase m refused", in: "5m", kind: "bitrate", wantErr: `unknown unit "m"`},
		{name: "bitrate exponent refused", in: "1e6", kind: "bitrate", wantErr: `unknown unit "e6"`},
		{name: "bitrate fraction of a bit", in: "0.5", kind: "bitrate", wantErr: "not a whole number"},
		{name: "bitrate too large", in: "99999999G", kind: "bitrate", wantErr: "too large"},
		{name: "bitrate two dots", in: "1.2.3M", kind: "bitrate", wantErr: "not a number"},
		{name: "size KiB", in: "64KiB", kind: "size", want: 64 << 10},
		{name: "size MiB", in: "8MiB", kind: "size", want: 8 << 20},
		{name: "size MB", in: "8MB", kind: "size", want: 8_000_000},
		{name: "size bytes", in: "512", kind: "size", want: 512},
		{name: "size negative", in: "-1KiB", kind: "size", wantErr: "is negative"},
		{name: "size bare int", in: int64(512), kind: "size", wantErr: `want a size string such as "64KiB", got integer 512`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got int64
			var err error
			switch tc.kind {
			case "duration":
				var d Duration
				err = d.UnmarshalTOML(tc.in)
				got = int64(d)
			case "bitrate":
				var b Bitrate
				err = b.UnmarshalTOML(tc.in)
				got = int64(b)
			case "size":
				var z ByteSize
				err = z.UnmarshalTOML(tc.in)
				got = int64(z)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UnmarshalTOML(%#v) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("UnmarshalTOML(%#v) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestConfigEncodeRoundTrip: a Config written with toml.Encode (e.g. by a
// future `relaymesh check --print`) reads back the same.
func TestConfigEncodeRoundTrip(t *testing.T) {
	cfg, err := Load("testdata/config/dropin/main.toml")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out.toml")
	os.WriteFile(path, buf.Bytes(), 0o644)
	back, err := Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(cfgNormalize(back), cfgNormalize(cfg)) {
		t.Fatalf("round trip differs:\n%+v\n%+v", back, cfg)
	}
}

func TestConfigDiff(t *testing.T) {
	edit := func(f func(c *Config)) *Config {
		c := Default()
		f(c)
		return c
	}
	tests := []struct {
		name         string
		new          *Config
		sections     []string
		listeners    []string
		needsRestart []string
		logLevel     bool
	}{
		{name: "same", new: Default()},
		{name: "sources ignored", new: edit(func(c *Config) { c.Sources = []string{"x"} })},
		{name: "rtmp listen", new: edit(func(c *Config) { c.RTMP.Listen = ":1936" }), sections: []string{"rtmp"}, listeners: []string{"rtmp"}},
		{name: "srt latency keeps listener", new: edit(func(c *Config) { c.SRT.Latency = Duration(time.Second) }), sections: []string{"srt"}},
		{name: "api and http listen", new: edit(func(c *Config) { c.API.Listen = ""; c.HTTP.Listen = ":8081" }), sections: []string{"http", "api"}, listeners: []string{"http", "api"}},
		{name: "limits", new: edit(func(c *Config) { c.Limits.MaxBitrate = 1000 }), sections: []string{"limits"}},
		{name: "auth allowlist", new: edit(func(c *Config) { c.Auth.PlayAllow = []string{"10.0.0.0/8"} }), sections: []string{"auth"}},
		{name: "srt streams", new: edit(func(c *Config) { c.SRTStreams = []SRTStreamConfig{{Key: "a/b"}} }), sections: []string{"srt_stream"}},
		{name: "log level", new: edit(func(c *Config) { c.Node.LogLevel = "debug" }), sections: []string{"node"}, logLevel: true},
		{name: "site is live", new: edit(func(c *Config) { c.Node.Site = "fra" }), sections: []string{"node"}},
		{name: "name role data_dir need restart", new: edit(func(c *Config) {
			c.Node.Name = "n2"
			c.Node.Role = RoleEdge
			c.Node.DataDir = "/srv/x"
		}), sections: []string{"node"}, needsRestart: []string{"node.name", "node.role", "node.data_dir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(Default(), tc.new)
			if !reflect.DeepEqual(d.Sections, tc.sections) || !reflect.DeepEqual(d.Changed(), tc.sections) {
				t.Errorf("Sections = %q, want %q", d.Sections, tc.sections)
			}
			if !reflect.DeepEqual(d.Listeners, tc.listeners) {
				t.Errorf("Listeners = %q, want %q", d.Listeners, tc.listeners)
			}
			if !reflect.DeepEqual(d.NeedsRestart, tc.needsRestart) {
				t.Errorf("NeedsRestart = %q, want %q", d.NeedsRestart, tc.needsRestart)
			}
			if d.LogLevel != tc.logLevel {
				t.Errorf("LogLevel = %v, want %v", d.LogLevel, tc.logLevel)
			}
			if d.Empty() != (len(tc.sections) == 0) {
				t.Errorf("Empty() = %v with sections %q", d.Empty(), tc.sections)
			}
			for _, s := range tc.sections {
				if !d.Section(s) {
					t.Errorf("Section(%q) = false", s)
				}
			}
		})
	}
	if s := Diff(Default(), edit(func(c *Config) { c.Node.Name = "x"; c.RTMP.Listen = "" })).String(); s != "changed: node, rtmp; listeners: rtmp; needs a restart: node.name" {
		t.Errorf("String() = %q", s)
	}
}

func TestConfigCheckFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "auth.key")
	short := filepath.Join(dir, "short.key")
	token := filepath.Join(dir, "api.token")
	os.WriteFile(key, []byte("c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n"), 0o600)
	os.WriteFile(short, []byte("abc\n"), 0o600)
	os.WriteFile(token, []byte("tok-tok-tok-tok-tok\n"), 0o644)
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr []string
	}{
		{name: "nothing named"},
		{name: "good key and token", edit: func(c *Config) { c.Auth.KeyFile = key; c.API.TokenFile = token }},
		{name: "missing key", edit: func(c *Config) { c.Auth.KeyFile = filepath.Join(dir, "nope") }, wantErr: []string{"auth.key_file: auth key: open", "no such file"}},
		{name: "short key", edit: func(c *Config) { c.Auth.KeyFile = short }, wantErr: []string{"auth.key_file:", "shorter than 16 bytes"}},
		{name: "short token", edit: func(c *Config) { c.API.TokenFile = short }, wantErr: []string{"api.token_file:", "holds 3 bytes"}},
		{name: "data dir is a file", edit: func(c *Config) { c.Node.DataDir = key }, wantErr: []string{"node.data_dir:", "is not a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			if tc.edit != nil {
				tc.edit(c)
			}
			err := c.CheckFiles()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckFiles succeeded, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckFiles error %q lacks %q", err, w)
				}
			}
		})
	}
	c := Default()
	c.API.TokenFile = token
	if w := c.FileWarnings(); len(w) != 1 || !strings.HasPrefix(w[0], "api.token_file: ") {
		t.Fatalf("FileWarnings = %q, want one for the 0644 token", w)
	}
}

func TestConfigResolve(t *testing.T) {
	t.Run("state directory", func(t *testing.T) {
		t.Setenv("STATE_DIRECTORY", "/var/lib/relaymesh-test:/other")
		if got := (NodeConfig{}).ResolveDataDir(); got != "/var/lib/relaymesh-test" {
			t.Fatalf("ResolveDataDir = %q", got)
		}
	})
	t.Run("explicit wins", func(t *testing.T) {
		t.Setenv("STATE_DIRECTORY", "/x")
		if got := (NodeConfig{DataDir: "/srv/rm"}).ResolveDataDir(); got != "/srv/rm" {
			t.Fatalf("ResolveDataDir = %q", got)
		}
	})
	t.Run("fallback is absolute", func(t *testing.T) {
		t.Setenv("STATE_DIRECTORY", "")
		if got := (NodeConfig{}).ResolveDataDir(); !filepath.IsAbs(got) {
			t.Fatalf("ResolveDataDir = %q", got)
		}
	})
	t.Run("name", func(t *testing.T) {
		h, _ := os.Hostname()
		if got := (NodeConfig{}).ResolveName(); got == "" || (h != "" && got != h) {
			t.Fatalf("ResolveName = %q, host %q", got, h)
		}
		if got := (NodeConfig{Name: "n1"}).ResolveName(); got != "n1" {
			t.Fatalf("ResolveName = %q", got)
		}
	})
}

func TestFieldErrors(t *testing.T) {
	err := Default().Validate()
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Version = 3
	c.Limits.MaxPublishers = -1
	fes := FieldErrors(c.Validate())
	if len(fes) != 2 || fes[0].Path != "version" || fes[1].Path != "limits.max_publishers" {
		t.Fatalf("FieldErrors = %+v", fes)
	}
	var fe *FieldError
	if !errors.As(c.Validate(), &fe) {
		t.Fatal("errors.As(*FieldError) failed")
	}
}

// FuzzConfig feeds arbitrary bytes through decode and validate: it must
// never panic, and a config it accepts must validate, survive Diff and
// round-trip through the encoder.
func FuzzConfig(f *testing.F) {
	for _, p := range []string{"../configs/standalone.toml", "../configs/edge.toml", "../configs/center.toml", "testdata/config/dropin/main.toml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	bad, _ := filepath.Glob("testdata/config/bad/*.toml")
	for _, p := range bad {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		problems, fatal := c.decodeFile("fuzz.toml", data, map[string]string{})
		if fatal {
			if len(problems) == 0 {
				t.Fatal("fatal decode without a problem")
			}
			return
		}
		for _, p := range problems {
			if p.Error() == "" || strings.Contains(p.Error(), "\n") {
				t.Fatalf("problem is not one line: %q", p.Error())
			}
		}
		verr := c.Validate()
		_ = Diff(Default(), c)
		if len(problems) > 0 || verr != nil {
			return
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("encode a valid config: %v", err)
		}
		back := Default()
		if errs, fatal := back.decodeFile("again.toml", buf.Bytes(), map[string]string{}); fatal || len(errs) > 0 {
			t.Fatalf("re-decode of an encoded valid config: %v\n%s", errs, buf.String())
		}
	})
}

// TestConfigKeyLines checks the key scanner behind file:line on inputs
// that trip naive line scanners.
func TestConfigKeyLines(t *testing.T) {
	src := `# comment with key = 1
version = 1 # trailing
[node]
"name" = """
not_a_key = 1
[not_a_table]
"""
site = 'x'   # literal
[ auth ]
publish_allow = [
  "10.0.0.0/8", # comment ]
  "192.0.2.1",
]
play_allow = ["a]b"]
key_file = "/k"
[[srt_stream]]
key = "live/a"
[[srt_stream]]
key = "live/b"
inline = { a = 1, b = [1, 2] }
node.x.y = 3
`
	got := map[string]int{}
	for _, kp := range cfgLocateKeys(src, map[string]int{"srt_stream": 5}) {
		got[kp.path] = kp.line
	}
	want := map[string]int{
		"version": 2, "node": 3, "node.name": 4, "node.site": 8, "auth": 9,
		"auth.publish_allow": 10, "auth.play_allow": 14, "auth.key_file": 15,
		"srt_stream[5]": 16, "srt_stream[5].key": 17, "srt_stream[6]": 18, "srt_stream[6].key": 19,
		"srt_stream[6].inline": 20, "srt_stream[6].node.x.y": 21,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("key lines:\n got %v\nwant %v", got, want)
	}
	// And the real decoder agrees this is valid TOML.
	var m map[string]any
	if _, err := toml.Decode(src, &m); err != nil {
		t.Fatal(err)
	}
}
