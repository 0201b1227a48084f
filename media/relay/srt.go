package relay

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	gosrt "github.com/datarhei/gosrt"
)

// MessageSize is the SRT payload a pusher sends: 7 TS packets.
const MessageSize = 7 * 188

// srtConfig builds the caller configuration for t. The stream id comes
// from the URL's streamid parameter; passphrase and pbkeylen in the URL
// are used only when the Target leaves them empty.
func srtConfig(t Target, u *url.URL, wantAction string) (gosrt.Config, string, error) {
	c := gosrt.DefaultConfig()
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, "", fmt.Errorf("srt target %s: bad query: %w", Redact(t.URL), err)
	}
	c.StreamId = q.Get("streamid")
	if c.StreamId == "" {
		return c, "", fmt.Errorf("srt target %s: no streamid; add ?streamid=%s:app/name", Redact(t.URL), wantAction)
	}
	c.Passphrase = t.Passphrase
	if c.Passphrase == "" {
		c.Passphrase = q.Get("passphrase")
	}
	keyLen := t.PBKeyLen
	if keyLen == 0 {
		if v, err := strconv.Atoi(q.Get("pbkeylen")); err == nil {
			keyLen = v
		}
	}
	if c.Passphrase != "" {
		if n := len(c.Passphrase); n < 10 || n > 80 {
			return c, "", fmt.Errorf("srt target %s: passphrase must be 10 to 80 characters (got %d)", Redact(t.URL), n)
		}
		switch keyLen {
		case 0:
			keyLen = 16
		case 16, 24, 32:
		default:
			return c, "", fmt.Errorf("srt target %s: pbkeylen %d is not 16, 24 or 32", Redact(t.URL), keyLen)
		}
		c.PBKeylen = keyLen
	}
	lat := t.Latency
	if lat == 0 {
		if v, err := strconv.Atoi(q.Get("latency")); err == nil && v > 0 {
			lat = time.Duration(v) * time.Millisecond
		}
	}
	if lat <= 0 {
		lat = DefaultLatency
	}
	c.Latency = lat
	c.ReceiverLatency, c.PeerLatency = lat, lat
	c.PeerIdleTimeout = t.PeerIdleTimeout
	if c.PeerIdleTimeout <= 0 {
		c.PeerIdleTimeout = DefaultPeerIdleTimeout
	}
	c.ConnectionTimeout = 3 * time.Second
	if t.ConnectTimeout > 0 {
		c.ConnectionTimeout = t.ConnectTimeout
	}
	if t.DSCP < 0 || t.DSCP > 63 {
		return c, "", fmt.Errorf("srt target %s: dscp %d is outside 0..63", Redact(t.URL), t.DSCP)
	}
	if t.DSCP > 0 {
		c.IPTOS = t.DSCP << 2
	}
	host := u.Host
	if u.Port() == "" {
		return c, "", fmt.Errorf("srt target %s: no port", Redact(t.URL))
	}
	if err := c.Validate(); err != nil {
		return c, "", fmt.Errorf("srt target %s: %w", Redact(t.URL), err)
	}
	return c, host, nil
}

// srtStats reads a connection's statistics; push tells which side's
// counters matter.
func srtStats(conn gosrt.Conn, push, encrypted bool, latency time.Duration) *SRTStats {
	var st gosrt.Statistics
	conn.Stats(&st)
	s := &SRTStats{
		RTTMs:       st.Instantaneous.MsRTT,
		PacketsSent: st.Accumulated.PktSent,
		PacketsRecv: st.Accumulated.PktRecv,
		Retransmits: st.Accumulated.PktRetrans + st.Accumulated.PktRecvRetrans,
		Drops:       st.Accumulated.PktSendDrop + st.Accumulated.PktRecvDrop,
		LinkMbps:    st.Instantaneous.MbpsLinkCapacity,
		Encrypted:   encrypted,
		LatencyMs:   uint64(latency.Milliseconds()),
	}
	if push {
		s.PacketsLost = st.Accumulated.PktSendLoss
		s.BufferMs = st.Instantaneous.MsSendBuf
		s.RateMbps = st.Instantaneous.MbpsSentRate
		s.WireBytes = st.Accumulated.ByteSent
	} else {
		s.PacketsLost = st.Accumulated.PktRecvLoss
		s.BufferMs = st.Instantaneous.MsRecvBuf
		s.RateMbps = st.Instantaneous.MbpsRecvRate
		s.WireBytes = st.Accumulated.ByteRecv
	}
	return s
}

// ErrNoAnswer: a connect attempt got no answer in time (the peer is down,
// unreachable, or the handshake was lost on a lossy path).
var ErrNoAnswer = errors.New("no answer")

// srtDialError makes gosrt's dial errors say what to check.
func srtDialError(t Target, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "timeout"):
		return fmt.Errorf("srt connect %s: %w (is the listener up, the UDP port open?): %w", Redact(t.URL), ErrNoAnswer, err)
	case strings.Contains(msg, "REJ") || strings.Contains(msg, "reject"):
		return fmt.Errorf("srt connect %s: refused by the listener (streamid, passphrase or auth): %w", Redact(t.URL), err)
	}
	return fmt.Errorf("srt connect %s: %w", Redact(t.URL), err)
}

// ConnectTimeoutFor is a Target.ConnectTimeout for a peer at rtt: four
// round trips (the handshake takes two), at least 1s, at most the 3s
// default; 0 (the default) when the RTT is unknown.
func ConnectTimeoutFor(rtt time.Duration) time.Duration {
	if rtt <= 0 {
		return 0
	}
	return min(max(4*rtt, time.Second), 3*time.Second)
}
