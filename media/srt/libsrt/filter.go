package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"net"
	"os"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// A listener's UDP socket is made here, not by libsrt, so that a socket
// filter runs in the kernel before libsrt sees a packet: it drops every
// handshake libsrt would take for a conclusion (any request type but an
// induction) that asks for a packet filter (SRT_CMD_FILTER).
// libsrt 1.5.1 (Debian 12) applies the filter a caller asks for when the
// listener sets none, and its FEC receiver then corrupts the heap on
// crafted data packets (an abort in FECFilterBuiltin under the receive
// thread: the whole process dies of one caller, test/hostile's
// TestSRTPacketFilterCaller). relaymesh uses no packet filter, and no
// libsrt option refuses one (a listener filter only merges with the
// caller's), so such a caller gets no answer and times out.

// Offsets in what a UDP socket filter sees: the UDP header first.
const (
	udpHdr      = 8
	srtHdr      = 16 // SRT packet header
	hsTypeOff   = 20 // handshake type in the handshake body (after version, encryption/extension fields, ISN, MTU, flow window)
	hsBody      = 48 // handshake body; the extension blocks follow
	hsInduction = 1  // URQ_INDUCTION
	cmdFilter   = 7  // SRT_CMD_FILTER
	// maxExtensions bounds the walk over extension blocks (a caller sends
	// at most HSREQ, KMREQ, SID, CONGESTION, FILTER and GROUP); a
	// conclusion with more blocks is dropped too.
	maxExtensions = 10
)

// conclusionProgram is the socket filter: data packets, other control
// packets and induction handshakes pass; any other handshake passes when
// none of its first maxExtensions extension blocks is SRT_CMD_FILTER and
// no block is left after them. Not only URQ_CONCLUSION (-1): libsrt
// 1.5.1's listener (CUDT::processConnectRequest) answers URQ_INDUCTION
// and takes every other request type (WAVEAHAND 0, AGREEMENT -2, DONE -3,
// any number) for a conclusion, reading its extensions
// (interpretSrtHandshake) and applying its filter.
func conclusionProgram() []bpf.Instruction {
	const accept, drop = 0xffffffff, 0
	// jumps to the two returns at the end are patched once the program
	// is laid out: toAccept/toDrop record which instructions jump where.
	var prog []bpf.Instruction
	var toAccept, toDrop []int
	jump := func(cond bpf.JumpTest, val uint32, onTrueDrop bool) {
		// true: drop (onTrueDrop) or fall through; false: accept or fall through
		if onTrueDrop {
			toDrop = append(toDrop, len(prog))
		} else {
			toAccept = append(toAccept, len(prog))
		}
		prog = append(prog, bpf.JumpIf{Cond: cond, Val: val})
	}
	// end accepts when fewer than 4 bytes are left after X: the end of
	// the extension blocks (A = len - X)
	end := func() {
		prog = append(prog, bpf.LoadExtension{Num: bpf.ExtLen}, bpf.ALUOpX{Op: bpf.ALUOpSub})
		jump(bpf.JumpGreaterOrEqual, 4, false)
	}
	prog = append(prog, bpf.LoadAbsolute{Off: udpHdr, Size: 1})
	jump(bpf.JumpBitsSet, 0x80, false) // control packet, else accept
	prog = append(prog, bpf.LoadAbsolute{Off: udpHdr, Size: 2}, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x7fff})
	jump(bpf.JumpEqual, 0, false) // handshake (control type 0), else accept
	prog = append(prog, bpf.LoadAbsolute{Off: udpHdr + srtHdr + hsTypeOff, Size: 4})
	jump(bpf.JumpNotEqual, hsInduction, false) // not an induction, else accept
	prog = append(prog, bpf.LoadConstant{Dst: bpf.RegX, Val: udpHdr + srtHdr + hsBody})
	for range maxExtensions {
		end()
		prog = append(prog, bpf.LoadIndirect{Off: 0, Size: 2})
		jump(bpf.JumpEqual, cmdFilter, true)
		// X += 4 + 4*length (the block's length is in 32-bit words); a
		// length past the end makes the next load fail, which drops
		prog = append(prog, bpf.LoadIndirect{Off: 2, Size: 2},
			bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
			bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 4},
			bpf.ALUOpX{Op: bpf.ALUOpAdd}, bpf.TAX{})
	}
	end() // nothing after the last block walked
	dropAt := len(prog)
	prog = append(prog, bpf.RetConstant{Val: drop}, bpf.RetConstant{Val: accept})
	acceptAt := dropAt + 1
	for _, i := range toAccept {
		j := prog[i].(bpf.JumpIf)
		j.SkipFalse = uint8(acceptAt - i - 1)
		prog[i] = j
	}
	for _, i := range toDrop {
		j := prog[i].(bpf.JumpIf)
		j.SkipTrue = uint8(dropAt - i - 1)
		prog[i] = j
	}
	return prog
}

// bindFiltered binds s to ip:port on a UDP socket made here with the
// conclusion filter attached; libsrt takes the socket over (and closes
// it with s). fam is 4 or 6; v6only applies to an IPv6 socket.
func bindFiltered(s C.SRTSOCKET, fam int, ip net.IP, port int, v6only bool) error {
	raw, err := bpf.Assemble(conclusionProgram())
	if err != nil {
		return fmt.Errorf("assemble the handshake filter: %w", err)
	}
	var domain int
	var sa unix.Sockaddr
	if fam == 4 {
		domain, sa = unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: [4]byte(ip.To4())}
	} else {
		domain, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: port, Addr: [16]byte(ip.To16())}
	}
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	fail := func(op string, err error) error {
		unix.Close(fd)
		return os.NewSyscallError(op, err)
	}
	if fam == 6 {
		v := 0
		if v6only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			return fail("setsockopt IPV6_V6ONLY", err)
		}
	}
	ins := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}); err != nil {
		return fail("setsockopt SO_ATTACH_FILTER", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if rc := C.rm_bind_acquire(s, C.int(fd)); rc < 0 {
		unix.Close(fd)
		return srtErr("bind_acquire", rc)
	}
	return nil
}

// packetFilter is the packet filter configuration s negotiated ("" for none).
func packetFilter(s C.SRTSOCKET) string {
	buf := make([]byte, 512)
	n := C.rm_getstr(s, C.SRTO_PACKETFILTER, (*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)))
	if n <= 0 {
		return ""
	}
	return string(buf[:n])
}

// warn logs to SetLogger's logger.
func warn(msg string, args ...any) {
	logMu.RLock()
	l := logger
	logMu.RUnlock()
	l.Warn(msg, args...)
}
