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

// ClassStats returns nothing outside Linux.
func ClassStats(ifname string) ([]ClassStat, error) { return nil, nil }
