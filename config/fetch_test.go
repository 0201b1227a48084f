package config

import (
	"slices"
	"testing"
)

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

// TestFetchPolicyPorts: the node's own ports in the outbound policy are
// those of its bound listeners and, in a cluster, of gossip and the
// backbone; a listener that is off or an address without a port adds
// none.
func TestFetchPolicyPorts(t *testing.T) {
	tests := []struct {
		name      string
		cluster   bool
		listening []string
		want      []uint16
	}{
		{"none", false, nil, nil},
		{"listeners", false, []string{"127.0.0.1:8080", "[::]:1935", "", "0.0.0.0:8890"}, []uint16{8080, 1935, 8890}},
		{"port 0 and names skipped", false, []string{"127.0.0.1:0", "host:http", "nohost"}, nil},
		{"cluster adds gossip and backbone", true, []string{"127.0.0.1:1935"}, []uint16{1935, 7946, 9710}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Cluster.Enabled = tt.cluster
			c.Cluster.BackboneListen = ":9710"
			c.Objects.FetchDeny = []string{"10.20.0.0/16"}
			p := c.FetchPolicy(tt.listening...)
			if !slices.Equal(p.OwnPorts, tt.want) {
				t.Errorf("own ports %v, want %v", p.OwnPorts, tt.want)
			}
			if len(p.Deny) != 1 || p.Deny[0].String() != "10.20.0.0/16" {
				t.Errorf("deny %v, want [10.20.0.0/16]", p.Deny)
			}
		})
	}
}
