package control

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"empty", Config{}, ""},
		{"ok", Config{Links: []Link{{Src: a, Dst: b, Delay: Duration(80 * time.Millisecond), Loss: 0.02}}, Blackhole: []netip.Addr{a}}, ""},
		{"loss NaN", Config{Links: []Link{{Src: a, Dst: b, Loss: math.NaN()}}}, "links[0].loss"},
		{"loss negative", Config{Links: []Link{{Src: a, Dst: b, Loss: -0.1}}}, "links[0].loss"},
		{"delay too long", Config{Links: []Link{{Src: a, Dst: b, Delay: Duration(MaxDelay), Jitter: 1}}}, "links[0]: delay"},
		{"no dst", Config{Links: []Link{{Src: a}}}, "links[0].dst"},
		{"duplicate", Config{Links: []Link{{Src: a, Dst: b}, {Src: a, Dst: b}}}, "links[1]: direction"},
		{"ipv6 blackhole", Config{Blackhole: []netip.Addr{netip.IPv6Loopback()}}, "blackhole[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("Validate: %v, want an error naming %q", err, c.wantErr)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := Config{Links: []Link{{
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
		Delay: Duration(80 * time.Millisecond), Jitter: Duration(time.Millisecond), Loss: 0.5,
	}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delay":"80ms"`) {
		t.Fatalf("delay not written as a duration string: %s", b)
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Links[0] != in.Links[0] {
		t.Fatalf("round trip: %+v, want %+v", out.Links[0], in.Links[0])
	}
}
