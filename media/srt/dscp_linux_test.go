package srt

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestDSCPMarksListenerPackets: Config.DSCP reaches the socket: the
// listener's answer to a handshake carries the mark in its IPv4 TOS byte
// (read with IP_RECVTOS, no packet capture needed).
func TestDSCPMarksListenerPackets(t *testing.T) {
	cases := []struct {
		name   string
		listen string
		dscp   int
	}{
		{"unmarked", "127.0.0.1:0", 0},
		{"AF41 on an IPv4 socket", "127.0.0.1:0", 34},
		{"EF on an IPv4 socket", "127.0.0.1:0", 46},
		{"AF41 on a dual-stack socket", ":0", 34}, // as the backbone's ":9710"
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := startServer(t, Config{Listen: c.listen, DSCP: c.dscp}, hubCfg())
			tos, err := inductionTOS(ts.port)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.dscp << 2; tos != want {
				t.Errorf("the listener's packet has TOS %#x (DSCP %d), want %#x (DSCP %d)", tos, tos>>2, want, c.dscp)
			}
		})
	}
}

func TestDSCPOutOfRange(t *testing.T) {
	for _, d := range []int{-1, 64} {
		if _, err := New(Config{Listen: "127.0.0.1:0", DSCP: d}, nil, nil); err == nil {
			t.Errorf("DSCP %d accepted", d)
		}
	}
}

// inductionTOS sends an SRT induction handshake to 127.0.0.1:port and
// returns the TOS byte of the answer.
func inductionTOS(port int) (int, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVTOS, 1)
	}); err != nil || serr != nil {
		return 0, fmt.Errorf("IP_RECVTOS: %v %v", err, serr)
	}
	// 16-byte control header (handshake, destination socket 0) and the
	// 48-byte handshake CIF of a v4 induction request.
	p := make([]byte, 64)
	binary.BigEndian.PutUint32(p[0:], 0x80000000)  // control packet, type handshake
	binary.BigEndian.PutUint32(p[16:], 4)          // version
	binary.BigEndian.PutUint16(p[22:], 2)          // extension field: UDT_DGRAM
	binary.BigEndian.PutUint32(p[24:], 12345)      // initial sequence number
	binary.BigEndian.PutUint32(p[28:], 1500)       // MTU
	binary.BigEndian.PutUint32(p[32:], 8192)       // flow window
	binary.BigEndian.PutUint32(p[36:], 1)          // INDUCTION
	binary.BigEndian.PutUint32(p[40:], 0x1234abcd) // our socket id
	copy(p[48:], net.IPv4(127, 0, 0, 1).To4())
	if _, err := conn.WriteToUDP(p, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		return 0, err
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf, oob := make([]byte, 1500), make([]byte, 128)
	n, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
	if err != nil {
		return 0, fmt.Errorf("no answer to the induction: %w", err)
	}
	if n < 64 || binary.BigEndian.Uint32(buf[36:]) != 1 {
		return 0, fmt.Errorf("the answer (%d bytes) is no induction response", n)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_TOS && len(m.Data) > 0 {
			return int(m.Data[0]), nil
		}
	}
	return 0, fmt.Errorf("no IP_TOS control message with the answer")
}
