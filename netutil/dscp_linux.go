//go:build linux

package netutil

import (
	"fmt"
	"syscall"
)

// SetDSCPRaw is SetDSCP for a raw socket, e.g. from a Control function.
func SetDSCPRaw(rc syscall.RawConn, dscp int) error {
	if err := checkDSCP(dscp); err != nil {
		return err
	}
	tos := dscp << 2
	var opErr error
	err := rc.Control(func(fd uintptr) {
		domain, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
		if err != nil {
			opErr = fmt.Errorf("set dscp: socket domain: %w", err)
			return
		}
		switch domain {
		case syscall.AF_INET:
			if err := syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TOS, tos); err != nil {
				opErr = fmt.Errorf("set dscp: IP_TOS: %w", err)
			}
		case syscall.AF_INET6:
			if err := syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS, tos); err != nil {
				opErr = fmt.Errorf("set dscp: IPV6_TCLASS: %w", err)
				return
			}
			// A dual-stack socket sends IPv4 with IP_TOS; an IPv6-only
			// socket refuses it, which is fine.
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TOS, tos)
		default:
			opErr = fmt.Errorf("set dscp: socket family %d is not IPv4 or IPv6", domain)
		}
	})
	if err != nil {
		return fmt.Errorf("set dscp: %w", err)
	}
	return opErr
}
