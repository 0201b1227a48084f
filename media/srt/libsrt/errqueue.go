package libsrt

import (
	"encoding/binary"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// A killed peer's host answers the link's own packets with ICMP port
// unreachables at once, but libsrt never sees them: its UDP socket is
// not connected, and the kernel hands ICMP errors to an unconnected UDP
// socket only with IP_RECVERR set, into its error queue. errQueue sets
// that option on a caller's own libsrt socket and reads the queue
// (MSG_ERRQUEUE, which leaves the data libsrt reads alone): the first
// port unreachable from the peer's address ends the link within one
// round trip of the kill, before any stall or probe. A probe cannot do
// this: the dead host's kernel sends about one port unreachable a second
// to a host after a burst of six (net.ipv4.icmp_ratelimit), and the
// link's sender spends them.
//
// A caller's libsrt socket binds an ephemeral port, but libsrt sets
// SO_REUSEADDR, so two of its sockets may get the same one: every UDP
// descriptor on the port is read (a report names the peer it came for).
// Should two connections share one socket, the first watch to drain the
// queue takes the other's reports too, and the other falls back to its
// probes.
//
// With IP_RECVERR an ICMP error is also reported once to the socket's
// next send or receive (sk_err); libsrt takes a receive's ECONNREFUSED
// as "try again", and a send's costs one packet, to a port that is gone.
type errQueue struct {
	fds    []int
	remote *net.UDPAddr
	buf    []byte
	oob    []byte
}

// openErrQueue finds the UDP sockets bound to c's local port (a caller's:
// its own, not a listener's shared by every peer) among the process's
// descriptors and sets IP_RECVERR (IPV6_RECVERR) on them; nil when none
// is found or takes the option.
func openErrQueue(c *Conn) *errQueue {
	if c.local == nil || c.remote == nil || c.local.Port == 0 {
		return nil
	}
	q := &errQueue{remote: c.remote, buf: make([]byte, 64), oob: make([]byte, 512)}
	for _, fd := range udpFDsByPort(c.local.Port) {
		if recvErr(fd, c.remote.IP.To4() != nil) {
			q.fds = append(q.fds, fd)
		}
	}
	if len(q.fds) == 0 {
		return nil
	}
	return q
}

// recvErr sets IP_RECVERR (IPV6_RECVERR) on fd.
func recvErr(fd int, v4peer bool) bool {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1) == nil
	case *unix.SockaddrInet6:
		if unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1) != nil {
			return false
		}
		if v4peer {
			// a v4 peer over a dual-stack socket: its errors come as v4
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
		return true
	}
	return false
}

// udpFDsByPort are this process's UDP sockets bound to port.
func udpFDsByPort(port int) []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_DGRAM {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			if a.Port == port {
				fds = append(fds, fd)
			}
		case *unix.SockaddrInet6:
			if a.Port == port {
				fds = append(fds, fd)
			}
		}
	}
	return fds
}

// refused drains the error queue and reports whether it held a port
// unreachable for a packet to the peer's address.
func (q *errQueue) refused() bool {
	hit := false
	for _, fd := range q.fds {
		hit = q.drain(fd) || hit
	}
	return hit
}

func (q *errQueue) drain(fd int) bool {
	hit := false
	for range 64 { // bounded: the kernel rate-limits what it queues
		_, oobn, _, from, err := unix.Recvmsg(fd, q.buf, q.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return hit // EAGAIN: empty
		}
		if !q.toPeer(from) {
			continue
		}
		msgs, err := unix.ParseSocketControlMessage(q.oob[:oobn])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if isRecvErr(m.Header) && len(m.Data) >= 4 && unix.Errno(binary.NativeEndian.Uint32(m.Data)) == unix.ECONNREFUSED {
				hit = true
			}
		}
	}
	return hit
}

func isRecvErr(h unix.Cmsghdr) bool {
	return (h.Level == unix.IPPROTO_IP && h.Type == unix.IP_RECVERR) ||
		(h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_RECVERR)
}

// toPeer: the failed packet's destination (msg_name of an error queue
// message) is the peer's address.
func (q *errQueue) toPeer(sa unix.Sockaddr) bool {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port == q.remote.Port && net.IP(a.Addr[:]).Equal(q.remote.IP)
	case *unix.SockaddrInet6:
		return a.Port == q.remote.Port && net.IP(a.Addr[:]).Equal(q.remote.IP)
	}
	return false
}
