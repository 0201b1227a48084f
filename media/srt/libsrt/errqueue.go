package libsrt

import (
	"encoding/binary"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A killed peer's host answers the link's own packets with ICMP port
// unreachables at once, but libsrt never sees them: its UDP socket is
// not connected, and the kernel hands ICMP errors to an unconnected UDP
// socket only with IP_RECVERR set, into its error queue. A caller's UDP
// socket is made here (callerSocket) with that option and handed to
// libsrt (srt_bind_acquire); errQueue reads the queue through a
// duplicate of the descriptor (MSG_ERRQUEUE, which leaves the data
// libsrt reads alone): the first port unreachable from the peer's
// address ends the link within one round trip of the kill, before any
// stall or probe. A probe cannot do this: the dead host's kernel sends
// about one port unreachable a second to a host after a burst of six
// (net.ipv4.icmp_ratelimit), and the link's sender spends them.
//
// The duplicate is the connection's own: it names the socket libsrt
// uses whatever libsrt does with its descriptor, and it is closed with
// the connection (close), under mu, so a drain never reads a descriptor
// number that was closed and given to something else.
//
// With IP_RECVERR an ICMP error is also reported once to the socket's
// next send or receive (sk_err); libsrt takes a receive's ECONNREFUSED
// as "try again", and a send's costs one packet, to a port that is gone.
type errQueue struct {
	mu     sync.Mutex
	fd     int // -1 once closed
	remote *net.UDPAddr
	buf    []byte
	oob    []byte
}

// callerSocket makes a caller's UDP socket as libsrt would (the
// wildcard address of the peer's family, an ephemeral port,
// close-on-exec) with IP_RECVERR (IPV6_RECVERR) set, and a duplicate of
// it for the error queue. libsrt takes the first over (srt_bind_acquire)
// and sets its buffer sizes, TOS and non-blocking mode itself.
func callerSocket(v4peer bool) (fd, dup int, err error) {
	domain := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{}
	if v4peer {
		domain, sa = unix.AF_INET, &unix.SockaddrInet4{}
	}
	fd, err = unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, -1, os.NewSyscallError("socket", err)
	}
	fail := func(op string, err error) (int, int, error) {
		unix.Close(fd)
		return -1, -1, os.NewSyscallError(op, err)
	}
	if v4peer {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
			return fail("setsockopt IP_RECVERR", err)
		}
	} else if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1); err != nil {
		return fail("setsockopt IPV6_RECVERR", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fail("dup", err)
	}
	return fd, dup, nil
}

func newErrQueue(dup int, remote *net.UDPAddr) *errQueue {
	return &errQueue{fd: dup, remote: remote, buf: make([]byte, 64), oob: make([]byte, 512)}
}

// close closes the duplicate; refused reports nothing afterwards.
func (q *errQueue) close() {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fd >= 0 {
		unix.Close(q.fd)
		q.fd = -1
	}
}

// refused drains the error queue and reports whether it held a port
// unreachable for a packet to the peer's address.
func (q *errQueue) refused() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fd < 0 {
		return false
	}
	return q.drain(q.fd)
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
