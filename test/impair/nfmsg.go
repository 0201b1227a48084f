package main

// The few nfnetlink_queue messages the tool needs, built and parsed by hand
// (include/uapi/linux/netfilter/nfnetlink_queue.h). They are plain byte
// layouts, so this file has no build constraint and is fuzzed on any OS.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	nlmsgHdrLen = 16
	nfgenMsgLen = 4

	nlmFRequest = 0x1
	nlmFAck     = 0x4
	nlmsgError  = 0x2
	nlmsgDone   = 0x3

	nfnlSubsysQueue = 3
	nfqnlMsgPacket  = nfnlSubsysQueue<<8 | 0
	nfqnlMsgVerdict = nfnlSubsysQueue<<8 | 1
	nfqnlMsgConfig  = nfnlSubsysQueue<<8 | 2

	// config attributes
	nfqaCfgCmd      = 1
	nfqaCfgParams   = 2
	nfqaCfgQueueMax = 3
	nfqaCfgMask     = 4
	nfqaCfgFlags    = 5

	nfqnlCfgCmdBind   = 1
	nfqnlCopyPacket   = 2
	nfqaCfgFGSO       = 0x4
	nfqaPacketHdr     = 1
	nfqaVerdictHdr    = 2
	nfqaPayload       = 10
	nlaTypeMask       = 0x3fff // strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nfDrop            = 0
	nfAccept          = 1
	afInet            = 2
	afUnspec          = 0
	nfnetlinkV0       = 0
	nlaHdrLen         = 4
	nfqnlPacketHdrLen = 7
)

var native = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// nlMsg builds one netlink message: header, nfgenmsg for queue num, attrs.
func nlMsg(typ, flags uint16, seq uint32, family uint8, queue uint16, attrs ...[]byte) []byte {
	n := nlmsgHdrLen + nfgenMsgLen
	for _, a := range attrs {
		n += align4(len(a))
	}
	b := make([]byte, nlmsgHdrLen, n)
	native.PutUint32(b[0:], uint32(n))
	native.PutUint16(b[4:], typ)
	native.PutUint16(b[6:], flags)
	native.PutUint32(b[8:], seq)
	// pid 0: to the kernel
	b = append(b, family, nfnetlinkV0, 0, 0)
	binary.BigEndian.PutUint16(b[nlmsgHdrLen+2:], queue)
	for _, a := range attrs {
		b = append(b, a...)
		b = append(b, make([]byte, align4(len(a))-len(a))...)
	}
	return b
}

// nlAttr builds one attribute (header + value, unpadded).
func nlAttr(typ uint16, val []byte) []byte {
	b := make([]byte, nlaHdrLen, nlaHdrLen+len(val))
	native.PutUint16(b[0:], uint16(nlaHdrLen+len(val)))
	native.PutUint16(b[2:], typ)
	return append(b, val...)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// bindMsg binds queue to this socket for IPv4.
func bindMsg(seq uint32, queue uint16) []byte {
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, afInet} // command, pad, be16 pf
	return nlMsg(nfqnlMsgConfig, nlmFRequest|nlmFAck, seq, afUnspec, queue, nlAttr(nfqaCfgCmd, cmd))
}

// paramsMsg asks for the first copyRange bytes of each packet, a queue of
// up to maxLen packets, and GSO packets unsegmented.
func paramsMsg(seq uint32, queue uint16, copyRange, maxLen uint32) []byte {
	params := append(be32(copyRange), nfqnlCopyPacket)
	return nlMsg(nfqnlMsgConfig, nlmFRequest|nlmFAck, seq, afUnspec, queue,
		nlAttr(nfqaCfgParams, params),
		nlAttr(nfqaCfgQueueMax, be32(maxLen)),
		nlAttr(nfqaCfgMask, be32(nfqaCfgFGSO)),
		nlAttr(nfqaCfgFlags, be32(nfqaCfgFGSO)),
	)
}

// verdictMsg accepts or drops packet id.
func verdictMsg(queue uint16, id uint32, accept bool) []byte {
	v := uint32(nfDrop)
	if accept {
		v = nfAccept
	}
	hdr := append(be32(v), be32(id)...)
	return nlMsg(nfqnlMsgVerdict, nlmFRequest, 0, afUnspec, queue, nlAttr(nfqaVerdictHdr, hdr))
}

// nlMessage is one netlink message split from a datagram.
type nlMessage struct {
	Type uint16
	Seq  uint32
	Body []byte // after the netlink header
}

// splitMessages splits a received datagram into netlink messages.
func splitMessages(b []byte) ([]nlMessage, error) {
	var msgs []nlMessage
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return msgs, fmt.Errorf("netlink: %d trailing bytes", len(b))
		}
		n := int(native.Uint32(b[0:]))
		if n < nlmsgHdrLen || n > len(b) {
			return msgs, fmt.Errorf("netlink: message length %d with %d bytes left", n, len(b))
		}
		msgs = append(msgs, nlMessage{
			Type: native.Uint16(b[4:]),
			Seq:  native.Uint32(b[8:]),
			Body: b[nlmsgHdrLen:n],
		})
		if a := align4(n); a < len(b) {
			b = b[a:]
		} else {
			b = nil
		}
	}
	return msgs, nil
}

// errnoOf reads an NLMSG_ERROR body: 0 is an ack, otherwise a negative errno.
func errnoOf(body []byte) (int32, error) {
	if len(body) < 4 {
		return 0, errors.New("netlink: short error message")
	}
	return int32(native.Uint32(body)), nil
}

// queuedPacket is one NFQNL_MSG_PACKET.
type queuedPacket struct {
	ID      uint32
	Queue   uint16
	Payload []byte // the first copy-range bytes of the packet, from the IP header on
}

var errNoPacketHdr = errors.New("nfqueue: packet message without NFQA_PACKET_HDR")

// parsePacket parses the body of an NFQNL_MSG_PACKET.
func parsePacket(body []byte) (queuedPacket, error) {
	var p queuedPacket
	if len(body) < nfgenMsgLen {
		return p, fmt.Errorf("nfqueue: packet message of %d bytes", len(body))
	}
	p.Queue = binary.BigEndian.Uint16(body[2:])
	b := body[nfgenMsgLen:]
	haveHdr := false
	for len(b) >= nlaHdrLen {
		l := int(native.Uint16(b[0:]))
		t := native.Uint16(b[2:]) & nlaTypeMask
		if l < nlaHdrLen || l > len(b) {
			return p, fmt.Errorf("nfqueue: attribute %d length %d with %d bytes left", t, l, len(b))
		}
		v := b[nlaHdrLen:l]
		switch t {
		case nfqaPacketHdr:
			if len(v) < nfqnlPacketHdrLen {
				return p, fmt.Errorf("nfqueue: packet header of %d bytes", len(v))
			}
			p.ID = binary.BigEndian.Uint32(v)
			haveHdr = true
		case nfqaPayload:
			p.Payload = v
		}
		if a := align4(l); a < len(b) {
			b = b[a:]
		} else {
			b = nil
		}
	}
	if !haveHdr {
		return p, errNoPacketHdr
	}
	return p, nil
}
