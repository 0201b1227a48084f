package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// packetMsg builds an NFQNL_MSG_PACKET datagram as the kernel sends it.
func packetMsg(queue uint16, id uint32, payload []byte) []byte {
	hdr := binary.BigEndian.AppendUint32(nil, id)
	hdr = append(hdr, 0x08, 0x00, 2) // ETH_P_IP, hook FORWARD
	return nlMsg(nfqnlMsgPacket, 0, 0, afInet, queue,
		nlAttr(nfqaPacketHdr, hdr),
		nlAttr(7|0x4000, []byte{0, 0, 0, 3}), // a physindev with NLA_F_NET_BYTEORDER
		nlAttr(nfqaPayload, payload))
}

func TestBuiltMessages(t *testing.T) {
	cases := []struct {
		name string
		msg  []byte
		typ  uint16
		want []byte // bytes after the 16-byte netlink header
	}{
		{
			name: "bind", msg: bindMsg(7, 3), typ: nfqnlMsgConfig,
			want: []byte{0, 0, 0, 3, 8, 0, 1, 0, nfqnlCfgCmdBind, 0, 0, afInet},
		},
		{
			name: "verdict accept", msg: verdictMsg(3, 0x01020304, true), typ: nfqnlMsgVerdict,
			want: []byte{0, 0, 0, 3, 12, 0, 2, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		},
		{
			name: "verdict drop", msg: verdictMsg(0, 9, false), typ: nfqnlMsgVerdict,
			want: []byte{0, 0, 0, 0, 12, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 9},
		},
		{
			name: "params", msg: paramsMsg(1, 0, 128, 1<<16), typ: nfqnlMsgConfig,
			want: []byte{
				0, 0, 0, 0,
				9, 0, 2, 0, 0, 0, 0, 128, nfqnlCopyPacket, 0, 0, 0, // params, padded
				8, 0, 3, 0, 0, 1, 0, 0, // queue maxlen
				8, 0, 4, 0, 0, 0, 0, 4, // mask GSO
				8, 0, 5, 0, 0, 0, 0, 4, // flags GSO
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs, err := splitMessages(c.msg)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("splitMessages: %d messages, err %v", len(msgs), err)
			}
			if int(native.Uint32(c.msg)) != len(c.msg) {
				t.Fatalf("length field %d, message %d bytes", native.Uint32(c.msg), len(c.msg))
			}
			if msgs[0].Type != c.typ {
				t.Fatalf("type %#x, want %#x", msgs[0].Type, c.typ)
			}
			if !bytes.Equal(msgs[0].Body, c.want) {
				t.Fatalf("body\n% x\nwant\n% x", msgs[0].Body, c.want)
			}
		})
	}
}

func TestParsePacket(t *testing.T) {
	payload := ipv4Packet([4]byte{10, 77, 0, 1}, [4]byte{10, 77, 0, 2}, 5)
	two := append(packetMsg(0, 41, payload[:21]), packetMsg(0, 42, payload)...)
	msgs, err := splitMessages(two)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("splitMessages: %d messages, err %v", len(msgs), err)
	}
	for i, m := range msgs {
		p, err := parsePacket(m.Body)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if p.ID != uint32(41+i) {
			t.Fatalf("message %d: id %d", i, p.ID)
		}
		if h, err := parseIPv4(p.Payload); err != nil || h.Dst != [4]byte{10, 77, 0, 2} {
			t.Fatalf("message %d: payload header %+v, %v", i, h, err)
		}
	}

	bad := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"no packet header", nlMsg(nfqnlMsgPacket, 0, 0, afInet, 0, nlAttr(nfqaPayload, payload))[nlmsgHdrLen:]},
		{"short packet header", nlMsg(nfqnlMsgPacket, 0, 0, afInet, 0, nlAttr(nfqaPacketHdr, []byte{1, 2}))[nlmsgHdrLen:]},
		{"attribute overruns", append([]byte{2, 0, 0, 0}, 200, 0, 1, 0, 0, 0, 0, 1)},
		{"attribute length 0", append([]byte{2, 0, 0, 0}, 0, 0, 1, 0)},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parsePacket(c.body); err == nil {
				t.Fatal("parsed; want an error")
			}
		})
	}
}

func TestSplitMessagesRejectsBadLengths(t *testing.T) {
	m := verdictMsg(0, 1, true)
	cases := map[string][]byte{
		"truncated header": m[:10],
		"length too big":   append(binary.NativeEndian.AppendUint32(nil, 999), m[4:]...),
		"length too small": append(binary.NativeEndian.AppendUint32(nil, 8), m[4:]...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := splitMessages(b); err == nil {
				t.Fatal("split; want an error")
			}
		})
	}
}

func FuzzParsePacket(f *testing.F) {
	payload := ipv4Packet([4]byte{10, 77, 0, 1}, [4]byte{10, 77, 0, 2}, 5)
	f.Add(packetMsg(0, 1, payload))
	f.Add(append(packetMsg(1, 2, payload[:3]), packetMsg(1, 3, nil)...))
	f.Add(verdictMsg(0, 1, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := splitMessages(b)
		if err == nil {
			total := 0
			for _, m := range msgs {
				total += nlmsgHdrLen + len(m.Body)
			}
			if total > len(b) {
				t.Fatalf("messages span %d bytes of %d", total, len(b))
			}
		}
		for _, m := range msgs {
			p, err := parsePacket(m.Body)
			if err == nil && len(p.Payload) > len(m.Body) {
				t.Fatalf("payload of %d bytes from a body of %d", len(p.Payload), len(m.Body))
			}
			_, _ = parseIPv4(p.Payload)
		}
	})
}
