package main

import (
	"errors"
	"fmt"
)

// ipv4Header is the part of an IPv4 header the impairment needs.
type ipv4Header struct {
	Src, Dst [4]byte
}

var errNotIPv4 = errors.New("not an IPv4 packet")

// parseIPv4 reads the addresses from the raw packet the kernel hands over.
// b may be truncated to the queue's copy range, so the total length field
// is not checked against len(b) (GSO packets also carry 0 there).
func parseIPv4(b []byte) (ipv4Header, error) {
	if len(b) < 20 {
		return ipv4Header{}, fmt.Errorf("ipv4 header: %d bytes, need 20", len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return ipv4Header{}, fmt.Errorf("ipv4 header: version %d: %w", v, errNotIPv4)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return ipv4Header{}, fmt.Errorf("ipv4 header: header length %d is below 20", ihl)
	}
	if len(b) < ihl {
		return ipv4Header{}, fmt.Errorf("ipv4 header: %d bytes, header length says %d", len(b), ihl)
	}
	var h ipv4Header
	copy(h.Src[:], b[12:16])
	copy(h.Dst[:], b[16:20])
	return h, nil
}
