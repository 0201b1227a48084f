package netutil

import (
	"errors"
	"fmt"
	"syscall"
)

// ListenError names the config key whose address addr could not be
// bound, in one line that says what to do; nil when err is nil.
func ListenError(key, addr string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s %q: address already in use: stop what listens there (ss -lntup) or choose another address", key, addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %q: no such address on this host: listen on one of its addresses or on \":port\"", key, addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s %q: permission denied: a port below 1024 needs CAP_NET_BIND_SERVICE", key, addr)
	}
	return fmt.Errorf("%s %q: %w", key, addr, err)
}
