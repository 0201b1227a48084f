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
// A caller's libsrt socket binds an ephemeral port of its own; should two
// connections ever share one, the first watch to drain the queue takes
// the other's reports too, and the other falls back to its probes. A
// port with more than one descriptor on it is left alone.
//
// With IP_RECVERR an ICMP error is also reported once to the socket's
// next send or receive (sk_err); libsrt takes a receive's ECONNREFUSED
// as "try again", and a send's costs one packet, to a port that is gone.
type errQueue struct {
	fd     int
	remote *net.UDPAddr
	buf    []byte
	oob    []byte
}

// openErrQueue finds the UDP socket of c (a caller's: its own, not a
// listener's shared by every peer) among the process's descriptors by its
// local port and sets IP_RECVERR (IPV6_RECVERR) on it; nil when it is
// not found or the option is refused.
func openErrQueue(c *Conn) *errQueue {
	if c.local == nil || c.remote == nil || c.local.Port == 0 {
		return nil
	}
	fd, ok := udpFDByPort(c.local.Port)
	if !ok {
		return nil
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil
	}
	switch sa.(type) {
	case *unix.SockaddrInet4:
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	case *unix.SockaddrInet6:
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		if err == nil && c.remote.IP.To4() != nil {
			// a v4 peer over a dual-stack socket: its errors come as v4
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	default:
		return nil
	}
	if err != nil {
		return nil
	}
	return &errQueue{fd: fd, remote: c.remote, buf: make([]byte, 64), oob: make([]byte, 512)}
}

// udpFDByPort is the one UDP socket of this process bound to port.
func udpFDByPort(port int) (int, bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	found, n := 0, 0
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
		var p int
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			p = a.Port
		case *unix.SockaddrInet6:
			p = a.Port
		default:
			continue
		}
		if p == port {
			found, n = fd, n+1
		}
	}
	return found, n == 1
}

// refused drains the error queue and reports whether it held a port
// unreachable for a packet to the peer's address.
func (q *errQueue) refused() bool {
	hit := false
	for range 64 { // bounded: the kernel rate-limits what it queues
		_, oobn, _, from, err := unix.Recvmsg(q.fd, q.buf, q.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
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
