//go:build linux

package netutil

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
)

// sockTOS reads back IP_TOS or IPV6_TCLASS of c.
func sockTOS(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatalf("getsockopt: %v %v", err, gerr)
	}
	return v
}

func TestSetDSCP(t *testing.T) {
	tests := []struct {
		name       string
		open       func() (syscall.Conn, error)
		level, opt int
	}{
		{"udp4", func() (syscall.Conn, error) { return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) },
			syscall.IPPROTO_IP, syscall.IP_TOS},
		{"udp6", func() (syscall.Conn, error) { return net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}) },
			syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS},
		{"tcp4", func() (syscall.Conn, error) {
			l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			defer l.Close()
			return net.DialTCP("tcp4", nil, l.Addr().(*net.TCPAddr))
		}, syscall.IPPROTO_IP, syscall.IP_TOS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.open()
			if err != nil {
				if strings.Contains(tt.name, "6") {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer c.(interface{ Close() error }).Close()
			if err := SetDSCP(c, DSCPAF41); err != nil {
				t.Fatalf("SetDSCP: %v", err)
			}
			if got := sockTOS(t, c, tt.level, tt.opt); got != DSCPAF41<<2 {
				t.Errorf("TOS byte = %#x, want %#x (AF41 << 2)", got, DSCPAF41<<2)
			}
		})
	}
}

func TestSetDSCPRejectsBadValues(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []int{-1, 64, 255} {
		t.Run(fmt.Sprintf("dscp %d", d), func(t *testing.T) {
			if err := SetDSCP(c, d); err == nil || !strings.Contains(err.Error(), "not a DSCP") {
				t.Errorf("SetDSCP(%d) = %v, want a 'not a DSCP' error", d, err)
			}
		})
	}
}

func TestDSCPControl(t *testing.T) {
	lc := net.ListenConfig{Control: DSCPControl(46)}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenPacket with DSCPControl: %v", err)
	}
	defer pc.Close()
	if got := sockTOS(t, pc.(*net.UDPConn), syscall.IPPROTO_IP, syscall.IP_TOS); got != 46<<2 {
		t.Errorf("TOS byte = %#x, want %#x (EF << 2)", got, 46<<2)
	}
}
