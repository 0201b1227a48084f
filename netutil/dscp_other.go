//go:build !linux

package netutil

import (
	"errors"
	"fmt"
	"syscall"
)

// SetDSCPRaw is only implemented on Linux.
func SetDSCPRaw(rc syscall.RawConn, dscp int) error {
	if err := checkDSCP(dscp); err != nil {
		return err
	}
	return fmt.Errorf("set dscp: %w on this OS", errors.ErrUnsupported)
}
