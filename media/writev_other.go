//go:build !linux

package media

import "syscall"

// fanoutSupported: without a non-blocking writev every player writes from
// its own goroutine (Sender.Send's loop).
const fanoutSupported = false

const maxIOV = 1024

func writev(fd uintptr, iov []syscall.Iovec) (int, error) { return 0, syscall.ENOSYS }

func iovec(b []byte) syscall.Iovec { return syscall.Iovec{Base: &b[0]} }
