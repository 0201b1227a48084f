package libsrt

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// Options are the settings of a socket. Zero values leave libsrt's
// defaults. A listener's options are inherited by the sockets it
// accepts; its Decide can override passphrase, key length and latency
// per connection.
type Options struct {
	StreamID   string // caller: SRTO_STREAMID (at most 512 bytes)
	Passphrase string // SRTO_PASSPHRASE (10..80 bytes); "" = unencrypted
	PBKeyLen   int    // SRTO_PBKEYLEN: 16, 24 or 32; 0 = the peer's choice (16 if neither sets it)
	// Latency is the TSBPD delay asked for in both directions
	// (SRTO_LATENCY); the larger of the two sides' values is used.
	Latency         time.Duration
	ConnectTimeout  time.Duration // caller: SRTO_CONNTIMEO (libsrt: 3s); libsrt repeats lost handshakes meanwhile
	PeerIdleTimeout time.Duration // SRTO_PEERIDLETIMEO (libsrt: 5s)
	IPTOS           int           // SRTO_IPTOS: the IP TOS byte (DSCP << 2); 0 = unmarked
	UDPRcvBuf       int           // SRTO_UDP_RCVBUF, bytes (the kernel caps it at net.core.rmem_max)
	UDPSndBuf       int           // SRTO_UDP_SNDBUF, bytes
	RcvBuf          int           // SRTO_RCVBUF, bytes (at most FC packets)
	SndBuf          int           // SRTO_SNDBUF, bytes
	FC              int           // SRTO_FC: flight flag size, packets
	// EveryLossReport makes a sender retransmit a lost packet at every
	// loss report (SRTO_RETRANSMITALGO 0) rather than at most once per
	// RTT (1, libsrt's default): a retransmission that is lost again is
	// resent at the receiver's next periodic report, about half an RTT
	// later, instead of a whole RTT later, so about twice as many
	// attempts fit into the latency, for some duplicate retransmissions.
	EveryLossReport bool
	// Linger bounds how long Close waits for the peer to acknowledge and
	// play out what was sent (0 = the peer's latency + 2s; < 0 = no wait).
	Linger time.Duration
}

// Validate reports what libsrt would refuse.
func (o Options) Validate() error {
	if len(o.StreamID) > 512 {
		return fmt.Errorf("streamid is %d bytes, at most 512", len(o.StreamID))
	}
	if n := len(o.Passphrase); n != 0 && (n < 10 || n > 80) {
		return fmt.Errorf("passphrase must be 10 to 80 characters (got %d)", n)
	}
	switch o.PBKeyLen {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("pbkeylen %d is not 16, 24 or 32", o.PBKeyLen)
	}
	if o.IPTOS < 0 || o.IPTOS > 255 {
		return fmt.Errorf("iptos %d is outside 0..255", o.IPTOS)
	}
	if o.Latency < 0 || o.ConnectTimeout < 0 || o.PeerIdleTimeout < 0 {
		return fmt.Errorf("negative latency or timeout")
	}
	return nil
}

func ms(d time.Duration) int { return int(d / time.Millisecond) }

// setInt sets an int option.
func setInt(s C.SRTSOCKET, opt C.SRT_SOCKOPT, name string, v int) error {
	if rc := C.rm_setint(s, C.int(opt), C.int(v)); rc < 0 {
		return fmt.Errorf("set %s=%d: %w", name, v, srtErr("setsockflag", rc))
	}
	return nil
}

func setString(s C.SRTSOCKET, opt C.SRT_SOCKOPT, name, v string) error {
	b := []byte(v)
	var p *C.char
	if len(b) > 0 {
		p = (*C.char)(unsafe.Pointer(&b[0]))
	}
	if rc := C.rm_setstr(s, C.int(opt), p, C.int(len(b))); rc < 0 {
		return fmt.Errorf("set %s: %w", name, srtErr("setsockflag", rc))
	}
	return nil
}

func getInt(s C.SRTSOCKET, opt C.SRT_SOCKOPT) (int, bool) {
	var v C.int
	if C.rm_getint(s, C.int(opt), &v) < 0 {
		return 0, false
	}
	return int(v), true
}

// apply sets o on a socket before it connects or binds.
func (o Options) apply(s C.SRTSOCKET, caller bool) error {
	if err := o.Validate(); err != nil {
		return err
	}
	type opt struct {
		set  bool
		id   C.SRT_SOCKOPT
		name string
		v    int
	}
	list := []opt{
		{true, C.SRTO_RCVSYN, "rcvsyn", 0},
		{true, C.SRTO_SNDSYN, "sndsyn", 0},
		{o.PBKeyLen > 0, C.SRTO_PBKEYLEN, "pbkeylen", o.PBKeyLen},
		{o.Latency > 0, C.SRTO_LATENCY, "latency", ms(o.Latency)},
		{o.ConnectTimeout > 0, C.SRTO_CONNTIMEO, "conntimeo", ms(o.ConnectTimeout)},
		{o.PeerIdleTimeout > 0, C.SRTO_PEERIDLETIMEO, "peeridletimeo", ms(o.PeerIdleTimeout)},
		{o.IPTOS > 0, C.SRTO_IPTOS, "iptos", o.IPTOS},
		{o.UDPRcvBuf > 0, C.SRTO_UDP_RCVBUF, "udp_rcvbuf", o.UDPRcvBuf},
		{o.UDPSndBuf > 0, C.SRTO_UDP_SNDBUF, "udp_sndbuf", o.UDPSndBuf},
		// the flight window first: libsrt caps the receive buffer by it
		{o.FC > 0, C.SRTO_FC, "fc", o.FC},
		{o.RcvBuf > 0, C.SRTO_RCVBUF, "rcvbuf", o.RcvBuf},
		{o.SndBuf > 0, C.SRTO_SNDBUF, "sndbuf", o.SndBuf},
		{o.EveryLossReport, C.SRTO_RETRANSMITALGO, "retransmitalgo", 0},
	}
	for _, x := range list {
		if !x.set {
			continue
		}
		if err := setInt(s, x.id, x.name, x.v); err != nil {
			return err
		}
	}
	if o.Passphrase != "" {
		if err := setString(s, C.SRTO_PASSPHRASE, "passphrase", o.Passphrase); err != nil {
			return err
		}
	}
	if caller && o.StreamID != "" {
		if err := setString(s, C.SRTO_STREAMID, "streamid", o.StreamID); err != nil {
			return err
		}
	}
	return nil
}
