package config

import "testing"

// TestFetchConfig: the fetch policy and cap keys are validated naming the
// key.
func TestFetchConfig(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string
	}{
		{"good", "[objects]\nfetch_allow = [\"127.0.0.1/32\", \"10.0.0.1\"]\nfetch_deny = [\"10.20.0.0/16\"]\nmax_download = \"1GiB\"\ndownload_timeout = \"5m\"\nmax_outputs = 4\n", nil},
		{"bad allow", "[objects]\nfetch_allow = [\"10.0.0.0/33\"]\n",
			[]string{`c.toml:3: objects.fetch_allow[0]: "10.0.0.0/33" is not a CIDR: want e.g. "10.0.0.0/8" or "2001:db8::/32"`}},
		{"bad deny", "[objects]\nfetch_deny = [\"nope\"]\n", []string{`c.toml:3: objects.fetch_deny[0]: "nope" is not an IP address or CIDR`}},
		{"negative outputs", "[objects]\nmax_outputs = -1\n", []string{`c.toml:3: objects.max_outputs: -1 is negative: use 0 for the default (32)`}},
		{"negative relays and tasks", "[objects]\nmax_relays = -1\nmax_running_tasks = -2\nmax_flows = -3\n", []string{
			`c.toml:3: objects.max_relays: -1 is negative: use 0 for the default (200)`,
			`c.toml:4: objects.max_running_tasks: -2 is negative: use 0 for the default (100)`,
			`c.toml:5: objects.max_flows: -3 is negative: use 0 for unlimited`}},
		{"too many outputs in a flow", "[objects]\nmax_outputs = 1\n[[flow]]\nid = \"f\"\nsource = {type = \"rtmp-push\", stream = \"live/a\"}\noutputs = [{name = \"a\", type = \"httpflv\"}, {name = \"b\", type = \"httpflv\"}]\n",
			[]string{`c.toml:7: flow[0].outputs: 2 outputs is more than objects.max_outputs (1)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkLoadProblems(t, "version = 1\n"+c.toml, c.want) })
	}
}
