package netutil

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestFetchPolicy(t *testing.T) {
	own := func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.10")} }
	pfx := func(s ...string) (out []netip.Prefix) {
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	cases := []struct {
		name   string
		policy FetchPolicy
		addr   string
		deny   string // "" = allowed; else a part of the reason
	}{
		{"public", FetchPolicy{}, "203.0.113.5:80", ""},
		{"private LAN is allowed by default", FetchPolicy{}, "10.1.2.3:1935", ""},
		{"loopback", FetchPolicy{}, "127.0.0.1:9997", "127.0.0.0/8 is denied by default"},
		{"loopback other", FetchPolicy{}, "127.8.9.1:80", "denied by default"},
		{"ipv6 loopback", FetchPolicy{}, "[::1]:80", "::1/128"},
		{"v4-mapped loopback", FetchPolicy{}, "[::ffff:127.0.0.1]:80", "127.0.0.0/8"},
		{"metadata", FetchPolicy{}, "169.254.169.254:80", "169.254.0.0/16"},
		{"link-local v6", FetchPolicy{}, "[fe80::1]:80", "fe80::/10"},
		{"link-local v6 with a zone", FetchPolicy{}, "[fe80::1%eth0]:80", "fe80::/10"},
		{"v4-mapped metadata", FetchPolicy{}, "[::ffff:169.254.169.254]:80", "169.254.0.0/16"},
		{"deny with a zone", FetchPolicy{Deny: pfx("fd00::/8")}, "[fd00::1%eth0]:80", "fetch_deny has fd00::/8"},
		{"unspecified", FetchPolicy{}, "0.0.0.0:80", "0.0.0.0/8"},
		{"own listener", FetchPolicy{OwnPorts: []uint16{9997}, LocalAddrs: own}, "192.0.2.10:9997", "own listeners"},
		{"own address, other port", FetchPolicy{OwnPorts: []uint16{9997}, LocalAddrs: own}, "192.0.2.10:80", ""},
		{"allow opens loopback", FetchPolicy{Allow: pfx("127.0.0.1/32")}, "127.0.0.1:9997", ""},
		{"allow is exact", FetchPolicy{Allow: pfx("127.0.0.1/32")}, "127.0.0.2:80", "denied by default"},
		{"allow opens an own listener", FetchPolicy{Allow: pfx("192.0.2.10/32"), OwnPorts: []uint16{9997}, LocalAddrs: own}, "192.0.2.10:9997", ""},
		{"deny", FetchPolicy{Deny: pfx("10.0.0.0/8")}, "10.1.2.3:80", "fetch_deny has 10.0.0.0/8"},
		{"deny beats allow", FetchPolicy{Allow: pfx("10.0.0.0/8"), Deny: pfx("10.9.0.0/16")}, "10.9.1.1:80", "fetch_deny"},
		{"not an address", FetchPolicy{}, "example.com:80", "not an IP address"},
		{"carrier-grade NAT", FetchPolicy{}, "100.64.0.1:80", "100.64.0.0/10 is denied by default"},
		{"carrier-grade NAT top", FetchPolicy{}, "100.127.255.254:80", "100.64.0.0/10"},
		{"just outside carrier-grade NAT", FetchPolicy{}, "100.128.0.1:80", ""},
		{"v4-mapped carrier-grade NAT", FetchPolicy{}, "[::ffff:100.64.1.1]:80", "100.64.0.0/10"},
		{"multicast v4", FetchPolicy{}, "224.0.0.1:80", "224.0.0.0/4"},
		{"multicast v4 top", FetchPolicy{}, "239.255.255.250:1900", "224.0.0.0/4"},
		{"multicast v6", FetchPolicy{}, "[ff02::1]:80", "ff00::/8"},
		{"NAT64 of loopback", FetchPolicy{}, "[64:ff9b::7f00:1]:80", "64:ff9b::/96"},
		{"NAT64 of a public address", FetchPolicy{}, "[64:ff9b::cb00:7105]:80", "64:ff9b::/96"},
		{"local-use NAT64", FetchPolicy{}, "[64:ff9b:1::a9fe:a9fe]:80", "64:ff9b:1::/48"},
		{"IPv4-translated", FetchPolicy{}, "[::ffff:0:7f00:1]:80", "::ffff:0:0:0/96"},
		{"IPv4-compatible", FetchPolicy{}, "[::7f00:1]:80", "::/96"},
		{"allowed NAT64, public inside", FetchPolicy{Allow: pfx("64:ff9b::/96")}, "[64:ff9b::cb00:7105]:80", ""},
		{"allowed NAT64, metadata inside", FetchPolicy{Allow: pfx("64:ff9b::/96")}, "[64:ff9b::a9fe:a9fe]:80", "carries IPv4 169.254.169.254"},
		{"allowed NAT64, denied inside", FetchPolicy{Allow: pfx("64:ff9b::/96"), Deny: pfx("10.0.0.0/8")}, "[64:ff9b::a01:203]:80", "fetch_deny has 10.0.0.0/8"},
		{"public v6", FetchPolicy{}, "[2001:db8::1]:80", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.CheckAddress(c.addr)
			switch {
			case c.deny == "" && err != nil:
				t.Errorf("%s: %v, want allowed", c.addr, err)
			case c.deny != "" && (!errors.Is(err, ErrFetchDenied) || !strings.Contains(err.Error(), c.deny)):
				t.Errorf("%s: %v, want denied saying %q", c.addr, err, c.deny)
			}
		})
	}
}

// TestFetchPolicyDialer: the Control func refuses a name that resolves to
// a denied address and a redirect to one, through a real HTTP client.
func TestFetchPolicyDialer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("internal")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := func(p *FetchPolicy) *http.Client {
		d := &net.Dialer{Control: p.Control(nil)}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	if _, err := client(&FetchPolicy{}).Get("http://localhost:" + port + "/"); !errors.Is(err, ErrFetchDenied) {
		t.Errorf("localhost by name: %v, want refused", err)
	}
	if resp, err := client(&FetchPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}).Get(srv.URL); err != nil {
		t.Errorf("allowed loopback: %v", err)
	} else {
		resp.Body.Close()
	}
	// a redirect from an allowed server to a denied address is refused
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) })}}
	inner.Start()
	defer inner.Close()
	redir := httptest.NewServer(http.RedirectHandler(inner.URL+"/", http.StatusFound))
	defer redir.Close()
	allowOne := &FetchPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if _, err := client(allowOne).Get(redir.URL); !errors.Is(err, ErrFetchDenied) {
		t.Errorf("redirect to 127.0.0.2: %v, want refused", err)
	}
	p := &FetchPolicy{}
	if _, err := p.Resolve(context.Background(), "localhost:"+port); !errors.Is(err, ErrFetchDenied) {
		t.Errorf("Resolve localhost: %v, want refused", err)
	}
}
