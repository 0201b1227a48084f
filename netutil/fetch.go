package netutil

// The outbound fetch policy: which addresses the node may connect to on a
// user's behalf (task playlists and callbacks, pull sources, push
// destinations). It is checked on the resolved address at dial time, so a
// name that resolves to a forbidden address, or a redirect to one, is
// refused as well as a literal.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// ErrFetchDenied is wrapped by every refusal of the fetch policy.
var ErrFetchDenied = errors.New("refused by the outbound fetch policy")

// DefaultFetchDeny are the ranges denied unless fetch_allow lets them
// through: loopback, link-local (the cloud metadata address
// 169.254.169.254 among them), "this network" and unspecified addresses,
// carrier-grade NAT (the provider's side of the node's uplink),
// multicast, and the IPv6 forms that carry an IPv4 address (NAT64,
// IPv4-translated, IPv4-compatible), which a translator could take to any
// of the IPv4 ranges above. (IPv4-mapped ::ffff:a.b.c.d is checked as
// the IPv4 address it is.)
var DefaultFetchDeny = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("fd00:ec2::254/128"), // the IPv6 metadata address (AWS)
	netip.MustParsePrefix("100.64.0.0/10"),     // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("224.0.0.0/4"),       // IPv4 multicast
	netip.MustParsePrefix("ff00::/8"),          // IPv6 multicast
	netip.MustParsePrefix("64:ff9b::/96"),      // NAT64, well-known prefix (RFC 6052)
	netip.MustParsePrefix("64:ff9b:1::/48"),    // NAT64, local use (RFC 8215)
	netip.MustParsePrefix("::ffff:0:0:0/96"),   // IPv4-translated (RFC 2765)
	netip.MustParsePrefix("::/96"),             // IPv4-compatible (deprecated)
}

// v4Carriers are IPv6 ranges whose last 32 bits are an IPv4 address that
// a translator on the path may connect to.
var v4Carriers = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("::/96"),
}

// embeddedIPv4 returns the IPv4 address an IPv6 address of v4Carriers
// carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	for _, n := range v4Carriers {
		if n.Contains(a) {
			b := a.As16()
			return netip.AddrFrom4([4]byte(b[12:])), true
		}
	}
	return netip.Addr{}, false
}

// FetchPolicy decides which addresses outbound connections may reach. An
// address in Deny is refused; else one in Allow passes; else one in
// DefaultFetchDeny, or one of the node's own addresses at the port of one
// of its own listeners (OwnPorts), is refused; anything else passes.
type FetchPolicy struct {
	Allow []netip.Prefix
	Deny  []netip.Prefix
	// OwnPorts are the ports the node itself listens on (API, RTMP,
	// HTTP-FLV, SRT): its own addresses at these ports are refused, so a
	// fetch cannot read the node's API or metrics through a LAN address.
	OwnPorts []uint16
	// LocalAddrs returns the node's own addresses (default: the
	// interfaces' addresses); tests replace it.
	LocalAddrs func() []netip.Addr
}

// Check returns nil when the policy lets a connection reach ap, else an
// error wrapping ErrFetchDenied that says why.
func (p *FetchPolicy) Check(ap netip.AddrPort) error {
	if p == nil {
		return nil
	}
	// netip.Prefix never contains an address with a zone: without
	// WithZone("") "fe80::1%eth0" passed every deny range
	a := ap.Addr().Unmap().WithZone("")
	if err := p.check(a, ap); err != nil {
		return err
	}
	// an allowed NAT64 (or other IPv4-carrying) address still may not
	// reach an IPv4 address the policy denies
	if v4, ok := embeddedIPv4(a); ok {
		if err := p.check(v4, netip.AddrPortFrom(v4, ap.Port())); err != nil {
			return fmt.Errorf("%s carries IPv4 %s: %w", ap, v4, err)
		}
	}
	return nil
}

func (p *FetchPolicy) check(a netip.Addr, ap netip.AddrPort) error {
	for _, n := range p.Deny {
		if n.Contains(a) {
			return fmt.Errorf("%s: %w (objects.fetch_deny has %s)", ap, ErrFetchDenied, n)
		}
	}
	for _, n := range p.Allow {
		if n.Contains(a) {
			return nil
		}
	}
	for _, n := range DefaultFetchDeny {
		if n.Contains(a) {
			return fmt.Errorf("%s: %w (%s is denied by default: add it to objects.fetch_allow to allow it)", ap, ErrFetchDenied, n)
		}
	}
	if slices.Contains(p.OwnPorts, ap.Port()) && slices.Contains(p.localAddrs(), a) {
		return fmt.Errorf("%s: %w (one of this node's own listeners: add the address to objects.fetch_allow to allow it)", ap, ErrFetchDenied)
	}
	return nil
}

func (p *FetchPolicy) localAddrs() []netip.Addr {
	if p.LocalAddrs != nil {
		return p.LocalAddrs()
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// CheckAddress checks a dialed "ip:port" (what a net.Dialer's Control
// receives: the resolved address).
func (p *FetchPolicy) CheckAddress(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%s: %w (not an IP address and port)", address, ErrFetchDenied)
	}
	return p.Check(ap)
}

// Control is a net.Dialer Control func that refuses a connection the
// policy denies, after name resolution and for every dial (redirects
// included); next (may be nil) runs after the check, e.g. DSCPControl.
func (p *FetchPolicy) Control(next func(network, address string, c syscall.RawConn) error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		if err := p.CheckAddress(address); err != nil {
			return err
		}
		if next != nil {
			return next(network, address, c)
		}
		return nil
	}
}

// Resolve looks host ("name:port") up and returns the first address the
// policy allows as "ip:port", for clients that cannot take a Control func
// (SRT): they dial that literal, so the name cannot resolve differently
// between the check and the dial.
func (p *FetchPolicy) Resolve(ctx context.Context, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", host, err)
	}
	var first error
	for _, ip := range ips {
		addr := net.JoinHostPort(ip.Unmap().String(), port)
		err := p.CheckAddress(addr)
		if err == nil {
			return addr, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("resolve %s: no address", host)
	}
	return "", first
}

// maxRedirects bounds the redirects an outbound HTTP client follows.
const maxRedirects = 5

// CheckRedirect is an http.Client CheckRedirect for policy clients: at
// most 5 redirects, to http or https only (the dial of each is checked by
// the policy's Control).
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %q: %w (only http and https)", req.URL.Scheme, ErrFetchDenied)
	}
	return nil
}

// HTTPClient returns a client whose every connection passes the policy,
// redirects included, bounded by timeout (0: none).
func (p *FetchPolicy) HTTPClient(timeout time.Duration) *http.Client {
	return PolicyHTTPClient(func() *FetchPolicy { return p }, timeout)
}

// PolicyHTTPClient is HTTPClient with the policy read at each dial, so a
// long-lived client follows a changed config.
func PolicyHTTPClient(policy func() *FetchPolicy, timeout time.Duration) *http.Client {
	control := func(network, address string, c syscall.RawConn) error {
		return policy().CheckAddress(address)
	}
	d := &net.Dialer{Timeout: 10 * time.Second, Control: control}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: CheckRedirect,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would dial for us, past the policy
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		},
	}
}
