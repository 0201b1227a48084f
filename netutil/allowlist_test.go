package netutil

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []string // normalized prefixes
		wantErr string   // substring of the error
	}{
		{name: "empty", entries: nil, want: nil},
		{name: "cidr v4", entries: []string{"10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{name: "bare v4 becomes /32", entries: []string{"192.0.2.7"}, want: []string{"192.0.2.7/32"}},
		{name: "bare v6 becomes /128", entries: []string{"2001:db8::1"}, want: []string{"2001:db8::1/128"}},
		{name: "host bits cleared", entries: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{name: "mapped prefix unmapped", entries: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "mapped address unmapped", entries: []string{"::ffff:192.0.2.7"}, want: []string{"192.0.2.7/32"}},
		{name: "spaces trimmed", entries: []string{" 10.0.0.0/8 "}, want: []string{"10.0.0.0/8"}},
		{name: "bad cidr names entry", entries: []string{"10.0.0.0/8", "10.0.0.0/33"}, wantErr: `entry 1: "10.0.0.0/33" is not a CIDR`},
		{name: "hostname refused", entries: []string{"example.com"}, wantErr: `entry 0: "example.com" is not an IP address or CIDR`},
		{name: "empty entry refused", entries: []string{""}, wantErr: `entry 0: "" is empty`},
		{name: "zone refused", entries: []string{"fe80::1%eth0"}, wantErr: "has a zone"},
		{name: "short mapped prefix refused", entries: []string{"::ffff:0:0/64"}, wantErr: "shorter than /96"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseAllowList(tc.entries)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseAllowList(%q) error = %v, want it to contain %q", tc.entries, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAllowList(%q): %v", tc.entries, err)
			}
			var got []string
			for _, p := range l.Prefixes() {
				got = append(got, p.String())
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("prefixes = %q, want %q", got, tc.want)
			}
			if l.Len() != len(tc.want) {
				t.Fatalf("Len() = %d, want %d", l.Len(), len(tc.want))
			}
		})
	}
}

func TestAllowListAllows(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		addr    string
		want    bool
	}{
		{name: "empty allows v4", entries: nil, addr: "203.0.113.9", want: true},
		{name: "empty allows v6", entries: nil, addr: "2001:db8::9", want: true},
		{name: "inside v4", entries: []string{"10.0.0.0/8"}, addr: "10.200.1.1", want: true},
		{name: "outside v4", entries: []string{"10.0.0.0/8"}, addr: "11.0.0.1", want: false},
		{name: "mapped peer matches v4 entry", entries: []string{"10.0.0.0/8"}, addr: "::ffff:10.1.1.1", want: true},
		{name: "mapped entry matches v4 peer", entries: []string{"::ffff:10.0.0.0/104"}, addr: "10.1.1.1", want: true},
		{name: "bare address exact", entries: []string{"192.0.2.7"}, addr: "192.0.2.7", want: true},
		{name: "bare address neighbour", entries: []string{"192.0.2.7"}, addr: "192.0.2.8", want: false},
		{name: "v6 inside", entries: []string{"2001:db8::/32"}, addr: "2001:db8:1::5", want: true},
		{name: "v6 outside", entries: []string{"2001:db8::/32"}, addr: "2001:db9::5", want: false},
		{name: "v4 entry does not match v6 peer", entries: []string{"0.0.0.0/0"}, addr: "2001:db8::1", want: false},
		{name: "zone ignored", entries: []string{"fe80::/10"}, addr: "fe80::1%eth0", want: true},
		{name: "second entry", entries: []string{"10.0.0.0/8", "127.0.0.1"}, addr: "127.0.0.1", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseAllowList(tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Allows(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Fatalf("Allows(%s) with %q = %v, want %v", tc.addr, tc.entries, got, tc.want)
			}
		})
	}
}

type strAddr string

func (s strAddr) Network() string { return "test" }
func (s strAddr) String() string  { return string(s) }

func TestAllowListAllowsNetAddr(t *testing.T) {
	l, err := ParseAllowList([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	var nilTCP *net.TCPAddr
	tests := []struct {
		name string
		list AllowList
		addr net.Addr
		want bool
	}{
		{name: "tcp inside", list: l, addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1935}, want: true},
		{name: "tcp mapped 16-byte form", list: l, addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1").To16(), Port: 1935}, want: true},
		{name: "udp outside", list: l, addr: &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 8890}, want: false},
		{name: "ip addr inside", list: l, addr: &net.IPAddr{IP: net.ParseIP("10.9.9.9")}, want: true},
		{name: "string ip:port", list: l, addr: strAddr("10.0.0.5:1234"), want: true},
		{name: "string [v6]:port outside", list: l, addr: strAddr("[2001:db8::1]:1234"), want: false},
		{name: "string bare ip", list: l, addr: strAddr("10.0.0.5"), want: true},
		{name: "unreadable refused", list: l, addr: strAddr("pipe"), want: false},
		{name: "nil refused", list: l, addr: nil, want: false},
		{name: "typed nil refused", list: l, addr: nilTCP, want: false},
		{name: "empty list allows unreadable", list: AllowList{}, addr: strAddr("pipe"), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.list.AllowsNetAddr(tc.addr); got != tc.want {
				t.Fatalf("AllowsNetAddr(%v) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}
