package srt

import "time"

// libsrt sizes three arrays of every connection when it is accepted, and
// fills them at once, so they are resident whether used or not: the
// receive loss list (16 bytes per packet of the flight window, SRTO_FC,
// default 25600: 400 KiB), the receive buffer's index (16 bytes per packet
// of SRTO_RCVBUF, default 8192) and the send loss list (from the peer's
// flight window). The receive buffer also bounds how many of the port's
// packet units one connection can hold (a flood fills it).
//
// What a connection gets here: a publisher's receive buffer holds
// bufferWindow of media at the listener's (or the hub's) max bitrate,
// libsrt's default when no limit is set, and the flight window is the
// receive buffer: libsrt tells the peer min(FC, receive buffer) as the
// flight window anyway, so a larger FC only costs memory. A reader sends
// no media, so its receive side is the minimum.
const (
	// srtUnit is what libsrt counts per packet of SRTO_RCVBUF (MSS 1500 -
	// UDP and IP headers).
	srtUnit = 1500 - 28
	// defaultRcvPackets is libsrt's SRTO_RCVBUF default, in packets.
	defaultRcvPackets = 8192
	// minRcvPackets is the receive buffer of a reader and the least a
	// publisher gets.
	minRcvPackets = 128
	// minBufferWindow is the least media time a publisher's receive
	// buffer holds at its max bitrate: the caller's latency, which wins
	// when larger than the listener's, is not known at the handshake.
	minBufferWindow = 3 * time.Second
)

// connBuffers returns the flight window (packets) and receive buffer
// (bytes) of one connection: a publisher with this latency whose bitrate
// is at most maxBitrate bits/s (0 = unlimited), or a reader.
func connBuffers(publish bool, latency time.Duration, maxBitrate int64) (fc, rcvBuf int) {
	n := minRcvPackets
	if publish {
		n = defaultRcvPackets
		if maxBitrate > 0 {
			window := max(4*latency, minBufferWindow)
			// 5/4: TS in SRT messages of 1316 bytes, bursts over the
			// limit's average
			pkts := maxBitrate / 8 * int64(window/time.Millisecond) / 1000 / MessageSize * 5 / 4
			n = int(min(max(pkts, minRcvPackets), defaultRcvPackets))
		}
	}
	return n, n * srtUnit
}
