package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Host is one network namespace on the lab's bridge.
type Host struct {
	lab   *Lab
	name  string
	ns    string
	addr  netip.Addr
	index int
}

// Name is the name given to AddHost.
func (h *Host) Name() string { return h.name }

// Namespace is the network namespace's name (for ip netns exec).
func (h *Host) Namespace() string { return h.ns }

// Addr is the host's address on the bridge.
func (h *Host) Addr() netip.Addr { return h.addr }

// AddrPort is Addr with port.
func (h *Host) AddrPort(port uint16) netip.AddrPort { return netip.AddrPortFrom(h.addr, port) }

// Command returns a command that runs name inside the host's namespace
// (through ip netns exec, which then execs name in place, so cmd.Process
// is name's own process). It is killed when ctx ends, and if it still
// runs when the lab closes it is killed by PID, with anything else left
// in the namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	// Do not outlive the test process if it dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Do runs fn on an OS thread switched into the host's namespace. Sockets
// that fn creates stay in that namespace after Do returns, so tests can
// talk from one host to another in plain Go.
func (h *Host) Do(fn func() error) error { return inNamespace(h.ns, fn) }

// ListenPacket is net.ListenPacket inside the host, e.g. ("udp4", ":0").
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// Listen is net.Listen inside the host, e.g. ("tcp4", ":0").
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var l net.Listener
	err := h.Do(func() (err error) {
		l, err = net.Listen(network, address)
		return err
	})
	return l, err
}

// DialContext dials from inside the host. The connect is waited for
// outside the namespace; the socket belongs to the host.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose connections are made from inside the
// host, e.g. to call an agent's /v1/ API on another host of the lab (or
// on this one) from the test process.
func (h *Host) HTTPClient() *http.Client {
	tr := &http.Transport{
		DialContext:       h.DialContext,
		DisableKeepAlives: true, // no idle sockets outliving the lab
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// inNamespace runs fn on a locked OS thread switched into namespace name.
// If the thread cannot be switched back it is left locked, so the runtime
// ends it with the goroutine instead of reusing it.
func inNamespace(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave netns %s: %w", name, err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
