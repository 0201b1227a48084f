package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

const (
	solNetlink       = 270 // SOL_NETLINK
	netlinkNoENOBUFS = 5   // NETLINK_NO_ENOBUFS
)

// nfQueue is one bound NFQUEUE queue. recv is called by one goroutine and
// verdict by another; both are plain syscalls on the same socket.
type nfQueue struct {
	fd    int
	num   uint16
	buf   []byte
	stash [][]byte // packet messages that arrived while configuring
}

// openQueue binds queue num, asking for copyRange bytes of each packet and
// a kernel queue of up to maxLen packets. It fails (EBUSY) when another
// process has the queue.
func openQueue(num uint16, copyRange, maxLen uint32) (*nfQueue, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nfqueue socket: %w", err)
	}
	q := &nfQueue{fd: fd, num: num, buf: make([]byte, 1<<16)}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		q.close()
		return nil, fmt.Errorf("nfqueue bind: %w", err)
	}
	// A large receive buffer: packets whose message does not fit are
	// dropped by the kernel (the queue is not fail-open), which would look
	// like extra loss. Not fatal when it cannot be raised.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 16<<20)
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkNoENOBUFS, 1)
	if err := q.request(bindMsg(1, num), 1); err != nil {
		q.close()
		return nil, fmt.Errorf("nfqueue bind queue %d: %w", num, err)
	}
	if err := q.request(paramsMsg(2, num, copyRange, maxLen), 2); err != nil {
		q.close()
		return nil, fmt.Errorf("nfqueue params queue %d: %w", num, err)
	}
	return q, nil
}

// request sends one config message and waits for its ack.
func (q *nfQueue) request(msg []byte, seq uint32) error {
	if err := syscall.Sendto(q.fd, msg, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return err
	}
	for range 64 { // bounded: the ack follows at most a few packets
		n, _, err := syscall.Recvfrom(q.fd, q.buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return err
		}
		msgs, err := splitMessages(q.buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			switch {
			case m.Type == nlmsgError && m.Seq == seq:
				e, err := errnoOf(m.Body)
				if err != nil {
					return err
				}
				if e != 0 {
					return syscall.Errno(-e)
				}
				return nil
			case m.Type == nfqnlMsgPacket:
				q.stash = append(q.stash, append([]byte(nil), m.Body...))
			}
		}
	}
	return errors.New("no ack from the kernel")
}

// recv returns the next packet messages' bodies. The slices are valid
// until the next call.
func (q *nfQueue) recv() ([][]byte, error) {
	if len(q.stash) > 0 {
		s := q.stash
		q.stash = nil
		return s, nil
	}
	for {
		n, _, err := syscall.Recvfrom(q.fd, q.buf, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ENOBUFS) {
				continue
			}
			return nil, fmt.Errorf("nfqueue recv: %w", err)
		}
		msgs, err := splitMessages(q.buf[:n])
		var bodies [][]byte
		for _, m := range msgs {
			if m.Type == nfqnlMsgPacket {
				bodies = append(bodies, m.Body)
			}
		}
		if err != nil && len(bodies) == 0 {
			return nil, err
		}
		if len(bodies) > 0 {
			return bodies, nil
		}
	}
}

// verdict accepts or drops packet id.
func (q *nfQueue) verdict(id uint32, accept bool) error {
	for {
		err := syscall.Sendto(q.fd, verdictMsg(q.num, id, accept), 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("nfqueue verdict %d: %w", id, err)
		}
		return nil
	}
}

func (q *nfQueue) close() error {
	if q.fd < 0 {
		return nil
	}
	err := syscall.Close(q.fd)
	q.fd = -1
	return os.NewSyscallError("close", err)
}
