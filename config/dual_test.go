package config

import "testing"

func TestRouteRedundancyConfig(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{name: "dual with a window", toml: "[[route]]\npattern = \"live/*\"\nsites = [\"fra\", \"sin\"]\nredundancy = \"dual\"\nredundancy_window = \"400ms\"\n"},
		{name: "single", toml: "[[route]]\npattern = \"live/*\"\nsites = [\"fra\"]\nredundancy = \"single\"\n"},
		{name: "bad values", toml: "[[route]]\npattern = \"live/*\"\nsites = [\"fra\"]\nredundancy = \"triple\"\nredundancy_window = \"11s\"\n",
			want: []string{`c.toml:4: route[0].redundancy: "triple" is not "single" or "dual"`, `c.toml:5: route[0].redundancy_window: 11s is outside 0..10s (0 = the larger leg's SRT latency)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkLoadProblems(t, tc.toml, tc.want)
		})
	}
}
