// Package nettest holds helpers for tests that need Linux network
// privileges.
package nettest

import (
	"syscall"
	"unsafe"
)

// DropNetAdmin removes CAP_NET_ADMIN from the calling thread's effective
// set (capabilities are per thread on Linux): lock the goroutine to its
// thread first, and let that thread die with the goroutine afterwards.
func DropNetAdmin() error {
	const capNetAdmin = 12
	hdr := struct {
		version uint32
		pid     int32
	}{version: 0x20080522} // _LINUX_CAPABILITY_VERSION_3
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return e
	}
	data[0].effective &^= 1 << capNetAdmin
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return e
	}
	return nil
}
