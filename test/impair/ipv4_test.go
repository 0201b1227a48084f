package main

import (
	"errors"
	"testing"
)

func ipv4Packet(src, dst [4]byte, ihl int) []byte {
	b := make([]byte, ihl*4+8)
	b[0] = 0x40 | byte(ihl)
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	return b
}

func TestParseIPv4(t *testing.T) {
	a, b := [4]byte{10, 77, 0, 1}, [4]byte{10, 77, 0, 2}
	cases := []struct {
		name    string
		pkt     []byte
		want    ipv4Header
		wantErr bool
		notV4   bool
	}{
		{name: "plain", pkt: ipv4Packet(a, b, 5), want: ipv4Header{Src: a, Dst: b}},
		{name: "with options", pkt: ipv4Packet(b, a, 15), want: ipv4Header{Src: b, Dst: a}},
		{name: "header only", pkt: ipv4Packet(a, b, 5)[:20], want: ipv4Header{Src: a, Dst: b}},
		{name: "short", pkt: ipv4Packet(a, b, 5)[:19], wantErr: true},
		{name: "empty", pkt: nil, wantErr: true},
		{name: "ipv6", pkt: append([]byte{0x60}, make([]byte, 39)...), wantErr: true, notV4: true},
		{name: "ihl below 5", pkt: ipv4Packet(a, b, 4), wantErr: true},
		{name: "options cut off", pkt: ipv4Packet(a, b, 8)[:24], wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseIPv4(c.pkt)
			if (err != nil) != c.wantErr {
				t.Fatalf("parseIPv4: err %v, want error %v", err, c.wantErr)
			}
			if c.notV4 && !errors.Is(err, errNotIPv4) {
				t.Fatalf("err %v, want errNotIPv4", err)
			}
			if err == nil && got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func FuzzParseIPv4(f *testing.F) {
	f.Add(ipv4Packet([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 5))
	f.Add(ipv4Packet([4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}, 15))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseIPv4(b)
		if err != nil {
			return
		}
		// Accepted: it is a v4 header that fits, and the addresses are
		// the ones at their fixed offsets.
		if b[0]>>4 != 4 || int(b[0]&0xf)*4 > len(b) || int(b[0]&0xf) < 5 {
			t.Fatalf("accepted a bad header % x", b[:min(len(b), 24)])
		}
		if [4]byte(b[12:16]) != h.Src || [4]byte(b[16:20]) != h.Dst {
			t.Fatalf("addresses %v %v do not match the header % x", h.Src, h.Dst, b[:20])
		}
	})
}
