//go:build !linux

package netutil

import (
	"context"
	"errors"
	"fmt"
)

// Apply is only implemented on Linux; elsewhere an enabled config fails.
func Apply(ctx context.Context, cfg QoSConfig) error {
	if !cfg.Enabled {
		return nil
	}
	return fmt.Errorf("qos: %w on this OS (Linux tc only)", errors.ErrUnsupported)
}

// Remove does nothing outside Linux.
func Remove(ifname string) error { return nil }

// RemoveTree finds nothing outside Linux.
func RemoveTree(ifname string) (Removal, error) { return NoTree, nil }

// InterfaceIndex is only implemented on Linux.
func InterfaceIndex(ifname string) (int, error) {
	return 0, fmt.Errorf("%q: %w", ifname, errors.ErrUnsupported)
}

// ClassStats returns nothing outside Linux.
func ClassStats(ifname string) ([]ClassStat, error) { return nil, nil }
