package flow

import (
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
		{"flow fields on a pull", Spec{ID: "a", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h/a/b", Flow: "up"}}, "source.flow"},
		{"srt caller needs srt", Spec{ID: "a", Source: Source{Type: SrcSRTCaller, URL: "rtmp://h/a/b"}}, "source.url"},
		{"httpflv pull needs http", Spec{ID: "a", Source: Source{Type: SrcHTTPFLVPull, URL: "srt://h:1"}}, "source.url"},
		{"own app as stream", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "flow/x"}}, "source.stream"},
		{"bad stream key", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "nokey"}}, "source.stream"},
		{"backup same name", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Backup: &Source{Name: "primary", Type: SrcRTMPPush, Stream: "l/b"}}, "backup.name"},
		{"player output with url", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "p", Type: OutHTTPFLV, URL: "http://x"}}}, "outputs[0].url"},
		{"output type", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "p", Type: "hls"}}}, "outputs[0].type"},
		{"output name", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "", Type: OutHTTPFLV}}}, "outputs[0].name"},
		{"output latency", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h:1", LatencyMS: 20000}}}, "outputs[0].latency_ms"},
		{"negative bitrate", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, MaxBitrate: -1}}, "source.max_bitrate"},
		{"long description", Spec{ID: "a", Description: strings.Repeat("d", MaxDescLen+1), Source: Source{Type: SrcRTMPPush}}, "description"},
		{"long url", Spec{ID: "a", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h/a/" + strings.Repeat("b", MaxURLLen)}}, "source.url"},
		{"allowlist too long", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Allow: slices.Repeat([]string{"10.0.0.1"}, MaxAllow+1)}}, "source.allow"},
		{"allowlist at the cap", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Allow: slices.Repeat([]string{"10.0.0.1"}, MaxAllow)}}, ""},
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
