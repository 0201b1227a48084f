package netutil

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// AllowList is a set of IP prefixes that may connect. The zero value and a
// list built from no entries allow everyone. It is immutable after
// [ParseAllowList] and safe for concurrent use.
type AllowList struct {
	prefixes []netip.Prefix
}

// ParseAllowList builds an AllowList from CIDRs ("10.0.0.0/8",
// "2001:db8::/32") and bare addresses ("192.0.2.7", "::1"). The error names
// the first bad entry by its index and value.
func ParseAllowList(entries []string) (AllowList, error) {
	var l AllowList
	for i, e := range entries {
		p, err := ParseAllowEntry(e)
		if err != nil {
			return AllowList{}, fmt.Errorf("entry %d: %w", i, err)
		}
		l.prefixes = append(l.prefixes, p)
	}
	return l, nil
}

// ParseAllowEntry parses one allowlist entry: a CIDR or a bare address (a
// single-host prefix). IPv4-mapped IPv6 entries ("::ffff:10.0.0.0/104") are
// turned into their IPv4 form so they match IPv4 peers. Host bits set below
// the prefix length are cleared ("10.1.2.3/8" means 10.0.0.0/8).
func ParseAllowEntry(s string) (netip.Prefix, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return netip.Prefix{}, fmt.Errorf("%q is empty: want a CIDR such as \"10.0.0.0/8\" or an address", s)
	}
	if strings.Contains(t, "/") {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: want e.g. \"10.0.0.0/8\" or \"2001:db8::/32\"", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone: zones are not allowed in allowlists", s)
		}
		if a := p.Addr(); a.Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped prefix shorter than /96: write it as IPv4", s)
			}
			p = netip.PrefixFrom(a.Unmap(), bits)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone: zones are not allowed in allowlists", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Len returns the number of entries; 0 means everyone is allowed.
func (l AllowList) Len() int { return len(l.prefixes) }

// Prefixes returns a copy of the entries, normalized.
func (l AllowList) Prefixes() []netip.Prefix {
	return append([]netip.Prefix(nil), l.prefixes...)
}

// Allows reports whether addr may connect: true when the list is empty or
// one entry contains addr. IPv4-mapped IPv6 addresses (from dual-stack
// sockets) are matched as IPv4; zones are ignored. An invalid addr is refused
// unless the list is empty.
func (l AllowList) Allows(addr netip.Addr) bool {
	if len(l.prefixes) == 0 {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range l.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsNetAddr is Allows for a connection's remote address (*net.TCPAddr,
// *net.UDPAddr, *net.IPAddr, or any net.Addr whose String is "ip:port" or an
// IP). An address it cannot read is refused unless the list is empty.
func (l AllowList) AllowsNetAddr(a net.Addr) bool {
	if len(l.prefixes) == 0 {
		return true
	}
	return l.Allows(addrOf(a))
}

func addrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case nil:
		return netip.Addr{}
	case *net.TCPAddr:
		if v == nil {
			return netip.Addr{}
		}
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip
	case *net.UDPAddr:
		if v == nil {
			return netip.Addr{}
		}
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip
	case *net.IPAddr:
		if v == nil {
			return netip.Addr{}
		}
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip
	}
	s := a.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	ip, _ := netip.ParseAddr(s)
	return ip
}
