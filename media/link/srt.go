package link

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// srtConfig builds the caller options for t. The URL is read by
// libsrt.ParseURL (streamid, passphrase, pbkeylen, latency, conntimeo,
// peeridletimeo); the Target's passphrase, pbkeylen, latency and timeouts
// replace the URL's when set.
func srtConfig(t Target, u *url.URL, wantAction string) (libsrt.Options, string, error) {
	fail := func(err error) (libsrt.Options, string, error) {
		return libsrt.Options{}, "", fmt.Errorf("srt target %s: %w", Redact(t.URL), err)
	}
	if u.Port() == "" {
		return fail(errors.New("no port"))
	}
	host, c, err := libsrt.ParseURL(u.String())
	if err != nil {
		return fail(err)
	}
	if c.StreamID == "" {
		return fail(fmt.Errorf("no streamid; add ?streamid=%s:app/name", wantAction))
	}
	if t.Passphrase != "" {
		c.Passphrase = t.Passphrase
	}
	if t.PBKeyLen != 0 {
		c.PBKeyLen = t.PBKeyLen
	}
	switch {
	case c.Passphrase == "":
		c.PBKeyLen = 0 // the key length is that of the key made from a passphrase
	case c.PBKeyLen == 0:
		c.PBKeyLen = 16
	}
	if t.Latency > 0 {
		c.Latency = t.Latency
	}
	if c.Latency <= 0 {
		c.Latency = DefaultLatency
	}
	if t.PeerIdleTimeout > 0 {
		c.PeerIdleTimeout = t.PeerIdleTimeout
	}
	if c.PeerIdleTimeout <= 0 {
		c.PeerIdleTimeout = DefaultPeerIdleTimeout
	}
	if t.ConnectTimeout > 0 {
		c.ConnectTimeout = t.ConnectTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 3 * time.Second
	}
	if t.DSCP < 0 || t.DSCP > 63 {
		return fail(fmt.Errorf("dscp %d is outside 0..63", t.DSCP))
	}
	c.IPTOS = t.DSCP << 2
	c.EveryLossReport = t.EveryLossReport
	if err := c.Validate(); err != nil {
		return fail(err)
	}
	return c, host, nil
}

// BackboneRTT is the RTT to size a backbone link to the listener at
// hostport by: rtt when gossip measured it, else the larger of the
// estimate rtt and a probed round trip (ProbeRTT).
func BackboneRTT(ctx context.Context, rtt time.Duration, measured bool, hostport string) time.Duration {
	if measured {
		return rtt
	}
	if p, ok := ProbeRTT(ctx, hostport); ok {
		return max(rtt, p)
	}
	return rtt
}

// ProbeRTT times one SRT induction handshake with the listener at
// hostport (up to 3 tries, 1 s each): the RTT of a backbone link about to
// be dialed before gossip measured one, whose latency would otherwise
// come from an estimate (the sites' distance, or the 120 ms floor).
func ProbeRTT(ctx context.Context, hostport string) (time.Duration, bool) {
	addr, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		return 0, false
	}
	rtt, st, err := libsrt.ProbeRTT(ctx, addr, time.Second, 3)
	return rtt, err == nil && st == libsrt.PeerAnswered && rtt > 0
}

// dialSRT connects to t as a caller; sending tells a watched link
// (t.WatchPeer) which progress to watch.
func dialSRT(ctx context.Context, t Target, addr string, o libsrt.Options, sending bool) (*libsrt.Conn, error) {
	conn, err := libsrt.Dial(ctx, addr, o)
	if err != nil {
		return nil, srtDialError(t, err)
	}
	if t.WatchPeer {
		go conn.Watch(ctx, sending)
	}
	return conn, nil
}

// peerGone is the error of a connection that broke under us: the
// watchdog's cause when it ended it, else libsrt's idle timeout.
func peerGone(conn *libsrt.Conn, idle time.Duration) error {
	if cause := conn.Cause(); cause != nil {
		return fmt.Errorf("%w: %w", errPeerGone, cause)
	}
	return fmt.Errorf("%w (peer idle timeout %s)", errPeerGone, idle)
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
		stale:       st.Stale,
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
