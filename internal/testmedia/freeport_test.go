package testmedia

import (
	"fmt"
	"net"
	"testing"
)

// TestFreePortSkipsTakenUDP: a port whose UDP twin another socket holds
// (as an SRT or WebRTC listener would) is never handed out, and the ports
// FreePorts returns bind over both TCP and UDP.
func TestFreePortSkipsTakenUDP(t *testing.T) {
	var held []net.PacketConn
	defer func() {
		for _, pc := range held {
			pc.Close()
		}
	}()
	taken := map[int]bool{}
	for range 200 { // hold many UDP ports, so some TCP ports the kernel hands out collide
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, pc)
		taken[pc.LocalAddr().(*net.UDPAddr).Port] = true
	}
	for _, port := range FreePorts(t, 20) {
		if taken[port] {
			t.Fatalf("port %d handed out while its UDP twin is held", port)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Errorf("port %d is not free over TCP: %v", port, err)
		} else {
			ln.Close()
		}
		if pc, err := net.ListenPacket("udp", addr); err != nil {
			t.Errorf("port %d is not free over UDP: %v", port, err)
		} else {
			pc.Close()
		}
	}
}
