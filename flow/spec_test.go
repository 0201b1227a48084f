package flow

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/lifecycle"
)

func TestPairs(t *testing.T) {
	for _, src := range SourceTypes {
		for _, out := range OutputTypes {
			if Pair(src, out) == "" {
				t.Errorf("%s -> %s refused; every pair is remuxable for H.264/H.265/AAC", src, out)
			}
		}
	}
	if Pair(SrcRTMPPush, OutSRTCaller) != "remux" || Pair(SrcSRTListener, OutHTTPFLV) != "remux" || Pair(SrcRTMPPull, OutRTMPPush) != "pass" {
		t.Error("remux table wrong")
	}
}

func TestValidateSpec(t *testing.T) {
	lookup := func(id, out string) error {
		if id == "up" && out == "o" {
			return nil
		}
		return lifecycle.Invalidf("", "no flow %s output %s", id, out)
	}
	cases := []struct {
		name  string
		spec  Spec
		field string
	}{
		{"minimal", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}}, ""},
		{"flow source exists", Spec{ID: "a", Source: Source{Type: SrcFlow, Flow: "up", Output: "o"}}, ""},
		{"flow source missing", Spec{ID: "a", Source: Source{Type: SrcFlow, Flow: "up", Output: "x"}}, "source.flow"},
		{"flow feeds itself", Spec{ID: "a", Source: Source{Type: SrcFlow, Flow: "a", Output: "o"}}, "source.flow"},
		{"flow source on a named node", Spec{ID: "a", Source: Source{Type: SrcFlow, Flow: "up", Output: "o", Node: "sin-1"}}, ""},
		{"flow source bad node", Spec{ID: "a", Source: Source{Type: SrcFlow, Flow: "up", Output: "o", Node: "no spaces"}}, "source.node"},
		{"flow source without output", Spec{ID: "a", Source: Source{Type: SrcFlow, Flow: "up"}}, "source.flow"},
		{"node on a push source", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Node: "sin"}}, "source.flow"},
		{"flow output offered", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "f", Type: OutFlow}}}, ""},
		{"flow output to another flow", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "f", Type: OutFlow, Flow: "b", Node: "fra"}}}, ""},
		{"flow output to itself", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "f", Type: OutFlow, Flow: "a"}}}, "outputs[0].flow"},
		{"flow output with url", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "f", Type: OutFlow, URL: "rtmp://h/a/b"}}}, "outputs[0].url"},
		{"flow output node without flow", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "f", Type: OutFlow, Node: "fra"}}}, "outputs[0].node"},
		{"flow reference on a play output", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "p", Type: OutRTMPPull, Flow: "b"}}}, "outputs[0].flow"},
		{"flow fields on a pull", Spec{ID: "a", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h/a/b", Flow: "up"}}, "source.flow"},
		{"srt caller needs srt", Spec{ID: "a", Source: Source{Type: SrcSRTCaller, URL: "rtmp://h/a/b"}}, "source.url"},
		{"httpflv pull needs http", Spec{ID: "a", Source: Source{Type: SrcHTTPFLVPull, URL: "srt://h:1"}}, "source.url"},
		{"own app as stream", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "flow/x"}}, "source.stream"},
		{"bad stream key", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "nokey"}}, "source.stream"},
		{"backup same name", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Backup: &Source{Name: "primary", Type: SrcRTMPPush, Stream: "l/b"}}, "backup.name"},
		{"player output with url", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "p", Type: OutHTTPFLV, URL: "http://x"}}}, "outputs[0].url"},
		{"output type", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "p", Type: "hls"}}}, "outputs[0].type"},
		{"output name", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "", Type: OutHTTPFLV}}}, "outputs[0].name"},
		{"output latency", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h:1?streamid=publish:a/b", LatencyMS: 20000}}}, "outputs[0].latency_ms"},
		{"negative bitrate", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, MaxBitrate: -1}}, "source.max_bitrate"},
		{"negative min bitrate", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, MinBitrate: -1}}, "source.min_bitrate"},
		{"min bitrate above max", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, MinBitrate: 2_000_000, MaxBitrate: 1_000_000}}, "source.min_bitrate"},
		{"negative max cc errors", Spec{ID: "a", Source: Source{Type: SrcSRTListener, MaxCCErrors: -1}}, "source.max_cc_errors"},
		{"max cc errors on an FLV source", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Backup: &Source{Type: SrcHTTPFLVPull, URL: "http://h/a/b.flv", MaxCCErrors: 5}}, "backup.max_cc_errors"},
		{"max cc errors on an SRT caller", Spec{ID: "a", Source: Source{Type: SrcSRTCaller, URL: "srt://h:9000?streamid=read:a/b", MaxCCErrors: 5}}, ""},
		{"long description", Spec{ID: "a", Description: strings.Repeat("d", MaxDescLen+1), Source: Source{Type: SrcRTMPPush}}, "description"},
		{"long url", Spec{ID: "a", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h/a/" + strings.Repeat("b", MaxURLLen)}}, "source.url"},
		{"allowlist too long", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Allow: slices.Repeat([]string{"10.0.0.1"}, MaxAllow+1)}}, "source.allow"},
		{"allowlist at the cap", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Allow: slices.Repeat([]string{"10.0.0.1"}, MaxAllow)}}, ""},
		{"srt caller output without streamid", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h:9000"}}}, "outputs[0].url"},
		{"srt caller output without port", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h?streamid=publish:a/b"}}}, "outputs[0].url"},
		{"srt caller output complete", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h:9000?streamid=publish:a/b"}}}, ""},
		{"srt caller source without streamid", Spec{ID: "a", Source: Source{Type: SrcSRTCaller, URL: "srt://h:9000"}}, "source.url"},
		{"srt caller source complete", Spec{ID: "a", Source: Source{Type: SrcSRTCaller, URL: "srt://h:9000?streamid=read:a/b"}}, ""},
		{"rtmp push output without stream", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "r", Type: OutRTMPPush, URL: "rtmp://h:1935/live"}}}, "outputs[0].url"},
		{"rtmp pull source without app", Spec{ID: "a", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h:1935"}}, "source.url"},
		{"max_bandwidth 10M", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, MaxBandwidth: 10_000_000}, ""},
		{"max_bandwidth 50M", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, MaxBandwidth: 50_000_000}, ""},
		{"max_bandwidth 15M", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, MaxBandwidth: 15_000_000}, "max_bandwidth"},
		{"max_bandwidth 10 (not bit/s)", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, MaxBandwidth: 10}, "max_bandwidth"},
		{"backup_url with a backup source", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "l/a"}, Backup: &Source{Type: SrcRTMPPush, Stream: "l/b"},
			Outputs: []Output{{Name: "r", Type: OutRTMPPush, URL: "rtmp://h/live/main", BackupURL: "rtmp://h2/live/backup"}}}, ""},
		{"srt backup_url", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "l/a"}, Backup: &Source{Type: SrcRTMPPush, Stream: "l/b"},
			Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h:9000?streamid=publish:l/m", BackupURL: "srt://h2:9000?streamid=publish:l/b"}}}, ""},
		{"backup_url without a backup source", Spec{ID: "a", Source: Source{Type: SrcRTMPPush},
			Outputs: []Output{{Name: "r", Type: OutRTMPPush, URL: "rtmp://h/live/main", BackupURL: "rtmp://h2/live/backup"}}}, "outputs[0].backup_url"},
		{"backup_url incomplete", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "l/a"}, Backup: &Source{Type: SrcRTMPPush, Stream: "l/b"},
			Outputs: []Output{{Name: "r", Type: OutRTMPPush, URL: "rtmp://h/live/main", BackupURL: "rtmp://h2:1935"}}}, "outputs[0].backup_url"},
		{"backup_url other scheme", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "l/a"}, Backup: &Source{Type: SrcRTMPPush, Stream: "l/b"},
			Outputs: []Output{{Name: "r", Type: OutRTMPPush, URL: "rtmp://h/live/main", BackupURL: "srt://h2:9000?streamid=publish:a/b"}}}, "outputs[0].backup_url"},
		{"backup_url equals url", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "l/a"}, Backup: &Source{Type: SrcRTMPPush, Stream: "l/b"},
			Outputs: []Output{{Name: "r", Type: OutRTMPPush, URL: "rtmp://h/live/main", BackupURL: "rtmp://h/live/main"}}}, "outputs[0].backup_url"},
		{"backup_url on a player output", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "l/a"}, Backup: &Source{Type: SrcRTMPPush, Stream: "l/b"},
			Outputs: []Output{{Name: "p", Type: OutRTMPPull, BackupURL: "rtmp://h2/live/backup"}}}, "outputs[0].backup_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Normalize()
			err := c.spec.Validate(lookup)
			got := ""
			if err != nil {
				got = lifecycle.AsProblem(err).Field
				if got == "" {
					got = "?"
				}
			}
			if got != c.field {
				t.Fatalf("field %q (%v), want %q", got, err, c.field)
			}
		})
	}
}

func TestLimit(t *testing.T) {
	cases := []struct {
		name      string
		maxBR, bw int64
		want      int64
		key       string
	}{
		{"none", 0, 0, 0, "max_bitrate"},
		{"source only", 5_000_000, 0, 5_000_000, "max_bitrate"},
		{"flow only", 0, 10_000_000, 10_000_000, "the flow's max_bandwidth"},
		{"source lower", 5_000_000, 10_000_000, 5_000_000, "max_bitrate"},
		{"flow lower", 30_000_000, 20_000_000, 20_000_000, "the flow's max_bandwidth"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Spec{ID: "a", Source: Source{Type: SrcRTMPPush, MaxBitrate: c.maxBR}, MaxBandwidth: c.bw}
			got, key := s.Limit(&s.Source)
			if got != c.want || key != c.key {
				t.Fatalf("Limit = %d %q, want %d %q", got, key, c.want, c.key)
			}
		})
	}
}

// TestCheckTargetRedacts: a refusal quotes the URL without its
// passphrase or password.
func TestCheckTargetRedacts(t *testing.T) {
	for _, raw := range []string{
		"srt://h:9000?passphrase=secret-0123456789",
		"srt://h?streamid=publish:a/b&passphrase=secret-0123456789",
		"rtmp://user:secret-0123456789@h/live",
	} {
		err := CheckTarget("url", raw, "publish", "rtmp", "srt")
		if err == nil || strings.Contains(err.Error(), "secret-0123456789") {
			t.Errorf("CheckTarget(%q) = %v, want a refusal without the secret", raw, err)
		}
	}
}

// TestCheckTargetSRTNumbers: an srt URL the connect would refuse is
// refused at create, naming the query key (or the port).
func TestCheckTargetSRTNumbers(t *testing.T) {
	const sid = "streamid=publish:a/b"
	cases := []struct{ name, url, want string }{
		{"port out of range", "srt://h:70000?" + sid, "port 70000 is outside 1..65535"},
		{"port zero", "srt://h:0?" + sid, "port 0 is outside 1..65535"},
		{"latency too large", "srt://h:9000?" + sid + "&latency=999999", `latency="999999" is not a number in 0..60000`},
		{"latency not a number", "srt://h:9000?" + sid + "&latency=fast", `latency="fast"`},
		{"negative conntimeo", "srt://h:9000?" + sid + "&conntimeo=-1", `conntimeo="-1"`},
		{"short passphrase", "srt://h:9000?" + sid + "&passphrase=short", "passphrase must be 10 to 80 characters (got 5)"},
		{"long passphrase", "srt://h:9000?" + sid + "&passphrase=" + strings.Repeat("p", 81), "passphrase must be 10 to 80 characters (got 81)"},
		{"pbkeylen", "srt://h:9000?" + sid + "&passphrase=0123456789ab&pbkeylen=20", "pbkeylen 20 is not 16, 24 or 32"},
		{"unknown key", "srt://h:9000?" + sid + "&latnecy=200", `unknown key "latnecy"`},
		{"listener mode", "srt://h:9000?" + sid + "&mode=listener", `mode="listener"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckTarget("outputs[0].url", c.url, "publish", "srt")
			var inv *lifecycle.Problem
			if !errors.As(err, &inv) || inv.Field != "outputs[0].url" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CheckTarget = %v, want a refusal of outputs[0].url saying %s", err, c.want)
			}
			if strings.Contains(err.Error(), "0123456789ab") {
				t.Errorf("the refusal quotes the passphrase: %v", err)
			}
		})
	}
	if err := CheckTarget("url", "srt://h:9000?"+sid+"&latency=200&passphrase=0123456789ab&pbkeylen=32&mode=caller", "publish", "srt"); err != nil {
		t.Errorf("a good URL refused: %v", err)
	}
}
