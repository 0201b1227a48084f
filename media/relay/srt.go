package relay

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// srtConfig builds the caller options for t. The stream id comes from
// the URL's streamid parameter; passphrase, pbkeylen and latency in the
// URL are used only when the Target leaves them empty.
func srtConfig(t Target, u *url.URL, wantAction string) (libsrt.Options, string, error) {
	var c libsrt.Options
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, "", fmt.Errorf("srt target %s: bad query: %w", Redact(t.URL), err)
	}
	c.StreamID = q.Get("streamid")
	if c.StreamID == "" {
		return c, "", fmt.Errorf("srt target %s: no streamid; add ?streamid=%s:app/name", Redact(t.URL), wantAction)
	}
	c.Passphrase = t.Passphrase
	if c.Passphrase == "" {
		c.Passphrase = q.Get("passphrase")
	}
	// a number in the URL that is not one is refused, not ignored
	num := func(key string) (int, error) {
		v := q.Get(key)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("srt target %s: %s %q is not a positive integer", Redact(t.URL), key, v)
		}
		return n, nil
	}
	keyLen := t.PBKeyLen
	if keyLen == 0 {
		if keyLen, err = num("pbkeylen"); err != nil {
			return c, "", err
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
		c.PBKeyLen = keyLen
	}
	lat := t.Latency
	if lat == 0 {
		ms, err := num("latency")
		if err != nil {
			return c, "", err
		}
		lat = time.Duration(ms) * time.Millisecond
	}
	if lat <= 0 {
		lat = DefaultLatency
	}
	c.Latency = lat
	c.PeerIdleTimeout = t.PeerIdleTimeout
	if c.PeerIdleTimeout <= 0 {
		c.PeerIdleTimeout = DefaultPeerIdleTimeout
	}
	c.ConnectTimeout = 3 * time.Second
	if t.ConnectTimeout > 0 {
		c.ConnectTimeout = t.ConnectTimeout
	}
	if t.DSCP < 0 || t.DSCP > 63 {
		return c, "", fmt.Errorf("srt target %s: dscp %d is outside 0..63", Redact(t.URL), t.DSCP)
	}
	c.IPTOS = t.DSCP << 2
	host := u.Host
	if u.Port() == "" {
		return c, "", fmt.Errorf("srt target %s: no port", Redact(t.URL))
	}
	if err := c.Validate(); err != nil {
		return c, "", fmt.Errorf("srt target %s: %w", Redact(t.URL), err)
	}
	return c, host, nil
}

// dialSRT connects to t as a caller.
func dialSRT(ctx context.Context, t Target, addr string, o libsrt.Options) (*libsrt.Conn, error) {
	conn, err := libsrt.Dial(ctx, addr, o)
	if err != nil {
		return nil, srtDialError(t, err)
	}
	return conn, nil
}

// srtStats reads a connection's statistics; push tells which side's
// counters matter.
func srtStats(conn *libsrt.Conn, push, encrypted bool) *SRTStats {
	st := conn.Stats()
	s := &SRTStats{
		RTTMs:       st.RTTMs,
		PacketsSent: st.PacketsSent,
		PacketsRecv: st.PacketsReceived,
		Retransmits: st.Retransmits + st.RecvRetransmits,
		Drops:       st.SendDrops + st.RecvDrops,
		LinkMbps:    st.LinkMbps,
		Encrypted:   encrypted,
	}
	if push {
		s.PacketsLost = st.PacketsSendLost
		s.BufferMs = uint64(max(st.SendBufferMs, 0))
		s.RateMbps = st.SendMbps
		s.WireBytes = st.BytesSent
		s.LatencyMs = uint64(max(st.PeerLatencyMs, 0))
	} else {
		s.PacketsLost = st.PacketsRecvLost
		s.BufferMs = uint64(max(st.RecvBufferMs, 0))
		s.RateMbps = st.RecvMbps
		s.WireBytes = st.BytesReceived
		s.LatencyMs = uint64(max(st.RecvLatencyMs, 0))
	}
	return s
}

// Errors of an SRT connect.
var (
	// ErrNoAnswer: a connect attempt got no answer in time (the peer is
	// down, unreachable, or every handshake was lost).
	ErrNoAnswer = errors.New("no answer")
	// ErrRefused: the listener refused the handshake; the error says why.
	ErrRefused = errors.New("refused by the listener")
)

// srtDialError makes libsrt's dial errors say what to check.
func srtDialError(t Target, err error) error {
	var re *libsrt.RejectError
	switch {
	case errors.Is(err, libsrt.ErrTimeout):
		return fmt.Errorf("srt connect %s: %w (is the listener up, the UDP port open?): %w", Redact(t.URL), ErrNoAnswer, err)
	case errors.As(err, &re):
		return fmt.Errorf("srt connect %s: %w: %s (SRT reject code %d)", Redact(t.URL), ErrRefused, libsrt.RejectText(re.Code), re.Code)
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
