//go:build linux

package netutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Helpers for tests that need network namespaces.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and changes tc state in them (CI runs as root)")
	}
}

// inNS runs fn on an OS thread that is in ns, then moves the thread back.
// If it cannot move back, the thread is thrown away rather than reused.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // thread stays locked and dies with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("move thread back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newNS creates a fresh, unnamed network namespace with lo up; it is freed
// when the test ends and nothing uses it any more.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	nsc := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.New() // moves this thread into it
		if err != nil {
			errc <- err
			return
		}
		if err := netns.Set(orig); err != nil {
			ns.Close()
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		nsc <- ns
	}()
	select {
	case ns := <-nsc:
		t.Cleanup(func() { ns.Close() })
		h := nsHandle(t, ns)
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("set lo up: %v", err)
		}
		return ns
	case err := <-errc:
		t.Fatalf("create network namespace: %v", err)
		return 0
	}
}

// nsHandle opens a netlink handle in ns, closed at the end of the test.
func nsHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle in namespace: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// tcConnIn returns a tcConn in ns, closed at the end of the test.
func tcConnIn(t *testing.T, ns netns.NsHandle) *tcConn {
	t.Helper()
	c, err := openTC(ns)
	if err != nil {
		t.Fatalf("open tc in namespace: %v", err)
	}
	t.Cleanup(c.close)
	return c
}

// addVeth creates a veth pair a (in nsA) and b (in nsB), gives them the
// addresses (CIDR, may be empty) and brings both up.
func addVeth(t *testing.T, nsA netns.NsHandle, a, addrA string, nsB netns.NsHandle, b, addrB string) {
	t.Helper()
	ha, hb := nsHandle(t, nsA), nsHandle(t, nsB)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, TxQLen: 1000}, PeerName: b, PeerNamespace: netlink.NsFd(int(nsB))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s/%s: %v", a, b, err)
	}
	for _, s := range []struct {
		h          *netlink.Handle
		name, addr string
	}{{ha, a, addrA}, {hb, b, addrB}} {
		l, err := s.h.LinkByName(s.name)
		if err != nil {
			t.Fatalf("find %s: %v", s.name, err)
		}
		if s.addr != "" {
			ad, err := netlink.ParseAddr(s.addr)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.h.AddrAdd(l, ad); err != nil {
				t.Fatalf("address %s on %s: %v", s.addr, s.name, err)
			}
		}
		if err := s.h.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", s.name, err)
		}
	}
}

// tcIn runs the tc tool in ns and returns its output; it fails the test on
// a non-zero exit unless allowFail.
func tcIn(t *testing.T, ns netns.NsHandle, allowFail bool, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("needs the tc tool (iproute2) to read the tree back")
	}
	var out []byte
	var runErr error
	// A child started from a thread inherits that thread's namespace.
	err := inNS(ns, func() error {
		out, runErr = exec.Command("tc", args...).CombinedOutput()
		return nil
	})
	if err != nil {
		t.Fatalf("enter namespace: %v", err)
	}
	if runErr != nil && !allowFail {
		t.Fatalf("tc %s: %v\n%s", strings.Join(args, " "), runErr, out)
	}
	return string(out)
}

// listenUDPIn opens a UDP socket in ns.
func listenUDPIn(t *testing.T, ns netns.NsHandle, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNS(ns, func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", ua)
		return err
	})
	if err != nil {
		t.Fatalf("listen udp %s in namespace: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialUDPIn opens a connected UDP socket in ns.
func dialUDPIn(t *testing.T, ns netns.NsHandle, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := inNS(ns, func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.DialUDP("udp", nil, ua)
		return err
	})
	if err != nil {
		t.Fatalf("dial udp %s in namespace: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
