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
		{"unspecified", FetchPolicy{}, "0.0.0.0:80", "0.0.0.0/8"},
		{"own listener", FetchPolicy{OwnPorts: []uint16{9997}, LocalAddrs: own}, "192.0.2.10:9997", "own listeners"},
		{"own address, other port", FetchPolicy{OwnPorts: []uint16{9997}, LocalAddrs: own}, "192.0.2.10:80", ""},
		{"allow opens loopback", FetchPolicy{Allow: pfx("127.0.0.1/32")}, "127.0.0.1:9997", ""},
		{"allow is exact", FetchPolicy{Allow: pfx("127.0.0.1/32")}, "127.0.0.2:80", "denied by default"},
		{"allow opens an own listener", FetchPolicy{Allow: pfx("192.0.2.10/32"), OwnPorts: []uint16{9997}, LocalAddrs: own}, "192.0.2.10:9997", ""},
		{"deny", FetchPolicy{Deny: pfx("10.0.0.0/8")}, "10.1.2.3:80", "fetch_deny has 10.0.0.0/8"},
		{"deny beats allow", FetchPolicy{Allow: pfx("10.0.0.0/8"), Deny: pfx("10.9.0.0/16")}, "10.9.1.1:80", "fetch_deny"},
		{"not an address", FetchPolicy{}, "example.com:80", "not an IP address"},
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
