package netutil

import (
	"fmt"
	"syscall"
)

// SetDSCP marks every packet sent on c (a *net.UDPConn, *net.TCPConn or
// anything else with SyscallConn) with the DSCP dscp (0..63), so that the
// QoS filters and the routers on the way see it: IP_TOS on IPv4 sockets,
// IPV6_TCLASS (and IP_TOS for IPv4-mapped traffic) on IPv6 sockets. The ECN
// bits are left 0.
func SetDSCP(c syscall.Conn, dscp int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("set dscp: %w", err)
	}
	return SetDSCPRaw(rc, dscp)
}

// DSCPControl returns a function for net.ListenConfig.Control or
// net.Dialer.Control that marks the new socket with dscp.
func DSCPControl(dscp int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		return SetDSCPRaw(c, dscp)
	}
}

func checkDSCP(dscp int) error {
	if dscp < 0 || dscp > 63 {
		return fmt.Errorf("set dscp: %d is not a DSCP between 0 and 63", dscp)
	}
	return nil
}
