package flow

import (
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt"
)

const pass = "0123456789-flow-pass"

func TestSRTStreams(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want []SRTStream
	}{
		{"rtmp source: nothing", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Stream: "live/a"}}, nil},
		{"srt-listener source without options: nothing", Spec{ID: "a", Source: Source{Type: SrcSRTListener, Stream: "live/a"}}, nil},
		{"srt-listener source with passphrase and latency", Spec{ID: "a",
			Source: Source{Type: SrcSRTListener, Stream: "live/a", Passphrase: pass, LatencyMS: 400}},
			[]SRTStream{{Key: "live/a", Flow: "a", PublishPassphrase: pass, Latency: 400 * time.Millisecond}}},
		{"source without stream: its internal key", Spec{ID: "a", Source: Source{Type: SrcSRTListener, LatencyMS: 300}},
			[]SRTStream{{Key: "flowsrc/a.primary", Flow: "a", Latency: 300 * time.Millisecond}}},
		{"backup too", Spec{ID: "a", Source: Source{Type: SrcSRTListener, Stream: "live/a", Passphrase: pass},
			Backup: &Source{Type: SrcSRTListener, Stream: "live/b", Passphrase: pass + "b"}},
			[]SRTStream{{Key: "live/a", Flow: "a", PublishPassphrase: pass}, {Key: "live/b", Flow: "a", PublishPassphrase: pass + "b"}}},
		{"srt-listener output: read passphrase of flow/<id>", Spec{ID: "a", Source: Source{Type: SrcRTMPPush},
			Outputs: []Output{{Name: "web", Type: OutHTTPFLV}, {Name: "srt", Type: OutSRTListener, Passphrase: pass, LatencyMS: 250}}},
			[]SRTStream{{Key: "flow/a", Flow: "a", ReadPassphrase: pass, Latency: 250 * time.Millisecond}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Normalize()
			if err := c.spec.Validate(nil); err != nil {
				t.Fatal(err)
			}
			if got := c.spec.SRTStreams(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("SRTStreams = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestSRTValidation(t *testing.T) {
	srtOut := func(p string, lat int) Output {
		return Output{Name: "s" + p + string(rune('0'+lat/100)), Type: OutSRTListener, Passphrase: p, LatencyMS: lat}
	}
	cases := []struct {
		name  string
		spec  Spec
		field string
	}{
		{"two srt outputs alike", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{srtOut(pass, 100), {Name: "b", Type: OutSRTListener, Passphrase: pass, LatencyMS: 100}}}, ""},
		{"two srt outputs, other passphrase", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{srtOut(pass, 100), srtOut("", 100)}}, "outputs[1].passphrase"},
		{"two srt outputs, other latency", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{srtOut(pass, 100), srtOut(pass, 200)}}, "outputs[1].passphrase"},
		{"key length without passphrase", Spec{ID: "a", Source: Source{Type: SrcSRTListener, PBKeyLen: 24}}, "source.pbkeylen"},
		{"key length of an srt-listener source", Spec{ID: "a", Source: Source{Type: SrcSRTListener, Passphrase: pass, PBKeyLen: 32}}, "source.pbkeylen"},
		{"key length of an srt-listener backup", Spec{ID: "a", Source: Source{Type: SrcSRTListener, Stream: "live/a"},
			Backup: &Source{Type: SrcSRTListener, Stream: "live/b", Passphrase: pass, PBKeyLen: 16}}, "backup.pbkeylen"},
		{"key length of an srt-listener output", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTListener, Passphrase: pass, PBKeyLen: 32}}}, "outputs[0].pbkeylen"},
		{"passphrase on an rtmp-push source", Spec{ID: "a", Source: Source{Type: SrcRTMPPush, Passphrase: pass}}, "source.passphrase"},
		{"latency on an httpflv output", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "p", Type: OutHTTPFLV, LatencyMS: 200}}}, "outputs[0].latency_ms"},
		{"pbkeylen on an rtmp-pull source", Spec{ID: "a", Source: Source{Type: SrcRTMPPull, URL: "rtmp://h/a/b", PBKeyLen: 16}}, "source.pbkeylen"},
		{"srt-caller output with passphrase and key length", Spec{ID: "a", Source: Source{Type: SrcRTMPPush}, Outputs: []Output{{Name: "s", Type: OutSRTCaller, URL: "srt://h:1?streamid=publish:a/b", Passphrase: pass, PBKeyLen: 32}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Normalize()
			got := ""
			if err := c.spec.Validate(nil); err != nil {
				got = lifecycle.AsProblem(err).Field
			}
			if got != c.field {
				t.Fatalf("field %q, want %q", got, c.field)
			}
		})
	}
}

// TestSRTStreamsAcrossFlows: two flows may share a source stream only with
// the same SRT settings, which the listener gets for that stream.
func TestSRTStreamsAcrossFlows(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	defer hub.Close()
	m := NewManager(hub, log, lifecycle.Env{})
	defer m.Close()
	mk := func(id, p string) Spec {
		return Spec{ID: id, Source: Source{Type: SrcSRTListener, Stream: "live/shared", Passphrase: p}}
	}
	if err := m.Create(mk("a", pass), lifecycle.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(mk("b", pass), lifecycle.CreateOpts{}); err != nil {
		t.Errorf("same settings refused: %v", err)
	}
	err := m.Create(mk("c", pass+"x"), lifecycle.CreateOpts{})
	if p := lifecycle.AsProblem(err); err == nil || p.Kind != lifecycle.Conflict || p.Field != "source.passphrase" {
		t.Errorf("other passphrase on the same stream: %v, want a Conflict on source.passphrase", err)
	}
	backup := Spec{ID: "d", Source: Source{Type: SrcSRTListener, Stream: "live/own"},
		Backup: &Source{Type: SrcSRTListener, Stream: "live/shared", Passphrase: pass + "x"}}
	err = m.Create(backup, lifecycle.CreateOpts{})
	if p := lifecycle.AsProblem(err); err == nil || p.Kind != lifecycle.Conflict || p.Field != "backup.passphrase" {
		t.Errorf("other passphrase on the same stream as a backup: %v, want a Conflict on backup.passphrase", err)
	}
	if got, _, ok := m.SRTOptions("publish", "live/shared"); !ok || got != pass {
		t.Errorf("SRTOptions(publish, live/shared) = %q, %v, want the flows' passphrase", got, ok)
	}
}

// TestSRTStreamOptions: what the SRT listener is told per connection: a
// publisher's passphrase for a srt-listener source, a reader's for a
// srt-listener output, with the latency; nothing for other streams.
func TestSRTStreamOptions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := media.NewHub(media.DefaultHubConfig(), log)
	defer hub.Close()
	m := NewManager(hub, log, lifecycle.Env{})
	defer m.Close()
	spec := Spec{ID: "f", Source: Source{Type: SrcSRTListener, Stream: "live/in", Passphrase: pass, LatencyMS: 400},
		Outputs: []Output{{Name: "srt", Type: OutSRTListener, Passphrase: pass + "r", LatencyMS: 250}}}
	if err := m.Create(spec, lifecycle.CreateOpts{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, action, key string
		want              srt.StreamOptions
		ok                bool
	}{
		{"publish to the source", srt.ActionPublish, "live/in", srt.StreamOptions{PublishPassphrase: pass, Latency: 400 * time.Millisecond}, true},
		{"read the output", srt.ActionRead, "flow/f", srt.StreamOptions{ReadPassphrase: pass + "r", Latency: 250 * time.Millisecond}, true},
		{"another stream", srt.ActionPublish, "live/other", srt.StreamOptions{}, false},
		{"another flow", srt.ActionRead, "flow/g", srt.StreamOptions{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, ok := m.SRTStreamOptions(c.action, c.key); ok != c.ok || !reflect.DeepEqual(got, c.want) {
				t.Errorf("SRTStreamOptions(%s, %s) = %+v, %v; want %+v, %v", c.action, c.key, got, ok, c.want, c.ok)
			}
		})
	}
}
