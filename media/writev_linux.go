package media

import (
	"syscall"
	"unsafe"
)

// fanoutSupported: the fan-out writer's non-blocking writev exists here.
const fanoutSupported = true

// maxIOV is the most iovecs one writev takes (IOV_MAX).
const maxIOV = 1024

// writev writes iov to fd once, retrying only on EINTR. A full socket
// gives syscall.EAGAIN.
func writev(fd uintptr, iov []syscall.Iovec) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}

func iovec(b []byte) syscall.Iovec {
	v := syscall.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return v
}
