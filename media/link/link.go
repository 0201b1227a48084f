// Package link moves a stream between the hub and a remote URL: a Pusher
// reads a hub stream and sends it to an RTMP or SRT target, a Puller
// fetches an RTMP, SRT or HTTP-FLV source and publishes it into the hub.
// Both reconnect on their own and ask a Next function for the target of
// every attempt, which is where the caller's failover lives.
package link

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relaymesh/relaymesh/netutil"
)

// Target is one remote endpoint.
type Target struct {
	URL             string        // rtmp://host:port/app/name[?q] | srt://host:port?streamid=... | http://host:port/app/name.flv (pull only)
	Passphrase      string        // SRT; "" = unencrypted
	PBKeyLen        int           // SRT 16|24|32 (0 = 16)
	Latency         time.Duration // SRT (0 = 120ms)
	PeerIdleTimeout time.Duration // SRT: silence after which the peer is declared dead (0 = 2s; backbone ~1s)
	DSCP            int           // 0 = leave unmarked; marks the SRT/RTMP socket
	// ConnectTimeout bounds an SRT handshake (0 = 3s); libsrt repeats a
	// lost handshake packet meanwhile. A caller that knows the RTT sets a
	// few RTTs, so a dead peer is noticed sooner.
	ConnectTimeout time.Duration
	// WatchPeer (SRT, backbone links): end the connection as soon as
	// its peer stops making progress and its port is found refused or
	// silent (libsrt.Conn.Watch), instead of waiting for libsrt's own
	// idle detection (seconds).
	WatchPeer bool
	// EveryLossReport (SRT, backbone links): retransmit at every loss
	// report (libsrt.Options.EveryLossReport), so a packet lost twice
	// still arrives within the latency.
	EveryLossReport bool
	// Policy, when set, is the outbound policy the dial must pass: checked
	// on the resolved address at connect time (RTMP, HTTP-FLV and each of
	// its redirects) or on the looked-up address that is then dialed (SRT).
	Policy *netutil.FetchPolicy
}

// dialControl is the Control func of a TCP dial to t: the policy check,
// then the DSCP mark.
func (t Target) dialControl() func(network, address string, c syscall.RawConn) error {
	var mark func(network, address string, c syscall.RawConn) error
	if t.DSCP > 0 {
		mark = netutil.DSCPControl(t.DSCP)
	}
	if t.Policy == nil {
		return mark
	}
	return t.Policy.Control(mark)
}

// pinSRTHost resolves an SRT target's host under its policy and puts the
// allowed address into u, so the SRT dial goes exactly there.
func pinSRTHost(ctx context.Context, t Target, u *url.URL) error {
	if t.Policy == nil {
		return nil
	}
	addr, err := t.Policy.Resolve(ctx, u.Host)
	if err != nil {
		return fmt.Errorf("srt target %s: %w", Redact(t.URL), err)
	}
	u.Host = addr
	return nil
}

// State is where a Pusher or Puller is in its connection cycle.
type State string

// States.
const (
	StateConnecting State = "connecting"
	StateRunning    State = "running"
	StateBackoff    State = "backoff"
	StateStopped    State = "stopped"
	// StateWaiting: a pusher waits for its hub stream to go live.
	StateWaiting State = "waiting"
)

// SRTStats are an SRT connection's statistics.
type SRTStats struct {
	RTTMs       float64 `json:"rtt_ms"`
	PacketsSent uint64  `json:"packets_sent"`
	PacketsRecv uint64  `json:"packets_received"`
	PacketsLost uint64  `json:"packets_lost"`
	Retransmits uint64  `json:"retransmits"`
	Drops       uint64  `json:"drops"`
	BufferMs    uint64  `json:"buffer_ms"` // send buffer (push) or receive buffer (pull)
	LinkMbps    float64 `json:"link_mbps"`
	RateMbps    float64 `json:"rate_mbps"` // send rate (push) or receive rate (pull)
	Encrypted   bool    `json:"encrypted"`
	LatencyMs   uint64  `json:"latency_ms"`
	// WireBytes are the data packets' bytes on the wire, IP, UDP and SRT
	// headers and retransmissions included, sent (push) or received (pull).
	WireBytes uint64 `json:"wire_bytes"`
	stale     bool   // libsrt.Stats.Stale: the last counters read, not the final ones
}

// Counters count what one session (connection) moved, or, in
// Status.Total, every session of the relay. The SRT fields come from the
// connection's own counters, which restart with each connection; they are
// sampled once a second and at the end of the session, and on SRT
// sessions Bytes is taken at the same instants, so ratios such as
// WireBytes/Bytes hold at any time (a session whose socket libsrt had
// released before its end was sampled counts up to its last sample).
type Counters struct {
	Bytes       uint64 `json:"bytes"`      // media bytes sent (push) or received (pull): SRT payload, RTMP/FLV tag bodies
	WireBytes   uint64 `json:"wire_bytes"` // SRT: data packets on the wire, headers and retransmissions included
	PacketsSent uint64 `json:"packets_sent"`
	PacketsRecv uint64 `json:"packets_received"`
	PacketsLost uint64 `json:"packets_lost"`
	Retransmits uint64 `json:"retransmits"`
	Drops       uint64 `json:"drops"`
}

func (c *Counters) add(o Counters) {
	c.Bytes += o.Bytes
	c.WireBytes += o.WireBytes
	c.PacketsSent += o.PacketsSent
	c.PacketsRecv += o.PacketsRecv
	c.PacketsLost += o.PacketsLost
	c.Retransmits += o.Retransmits
	c.Drops += o.Drops
}

// Status describes a Pusher or Puller for the API.
type Status struct {
	State      State     `json:"state"`
	Target     string    `json:"target"` // URL with passphrase/token redacted
	Since      time.Time `json:"since"`
	LastError  string    `json:"last_error,omitempty"`
	Reconnects int       `json:"reconnects"`
	// Bytes is Total.Bytes: media bytes over every session.
	Bytes uint64 `json:"bytes"`
	// Sessions counts the connections that moved data.
	Sessions int `json:"sessions"`
	// Session counts the current (or, between connections, the last)
	// session; Total every session including the current one. Ratios such
	// as wire bytes per media byte hold within each.
	Session Counters `json:"session"`
	Total   Counters `json:"total"`
	// SRT is the running SRT connection's live statistics (RTT, buffer,
	// rates; its counters are those of Session).
	SRT *SRTStats `json:"srt,omitempty"`
}

// ErrStop, returned (wrapped) by a Next function, ends Run with nil: the
// caller has no target any more and wants the relay to stop. Any other
// error from Next is retried after a backoff.
var ErrStop = errors.New("relay: no more targets")

// Errors of an attempt.
var (
	ErrUnsupportedScheme = errors.New("unsupported URL scheme")
	ErrIdle              = errors.New("source sent nothing")
)

// Defaults.
const (
	DefaultMinBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff      = 10 * time.Second
	DefaultReadTimeout     = 5 * time.Second
	DefaultLatency         = 120 * time.Millisecond
	DefaultPeerIdleTimeout = 2 * time.Second
	// connectTimeout bounds dialing plus the protocol handshake.
	connectTimeout = 10 * time.Second
	// writeStall is how long a push keeps retrying a full send queue or a
	// blocked socket before giving up on the connection.
	writeStall = 5 * time.Second
	// minRunning is how long a session must have run for the next
	// reconnect to be immediate rather than backed off.
	minRunning = 2 * time.Second
)

// tracker owns a Status and reports its changes.
type tracker struct {
	mu      sync.Mutex
	st      Status
	onState func(Status)
	// cur counts the current (or last) session, done the sessions before
	// it; next says that the next count starts a new session. live is the
	// session's media bytes as they move; an SRT session copies it into
	// cur.Bytes when it samples the connection's counters (sampled), so
	// that bytes and packet counters are of the same instant.
	cur, done Counters
	next      bool
	live      uint64
	sampled   bool
}

func (t *tracker) status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statusLocked()
}

func (t *tracker) statusLocked() Status {
	st := t.st
	if st.SRT != nil {
		s := *st.SRT
		st.SRT = &s
	}
	st.Session = t.cur
	st.Total = t.done
	st.Total.add(t.cur)
	st.Bytes = st.Total.Bytes
	return st
}

// newSession marks the start of a connection attempt: its first count
// ends the previous session's.
func (t *tracker) newSession() {
	t.mu.Lock()
	t.next = true
	t.mu.Unlock()
}

func (t *tracker) beginLocked() {
	if t.next {
		t.done.add(t.cur)
		t.cur = Counters{}
		t.next, t.live, t.sampled = false, 0, false
		t.st.Sessions++
	}
}

// set changes the state (and the target or error when given) and calls
// OnState outside the lock.
func (t *tracker) set(state State, target string, err error) {
	t.mu.Lock()
	changed := t.st.State != state
	t.st.State = state
	if target != "" {
		changed = changed || t.st.Target != target
		t.st.Target = target
	}
	if err != nil {
		t.st.LastError = err.Error()
		changed = true
	}
	if state != StateRunning {
		t.st.SRT = nil
	}
	if changed {
		t.st.Since = time.Now()
	}
	st := t.statusLocked()
	t.mu.Unlock()
	if changed && t.onState != nil {
		t.onState(st)
	}
}

func (t *tracker) reconnected() {
	t.mu.Lock()
	t.st.Reconnects++
	t.mu.Unlock()
}

func (t *tracker) addBytes(n int) {
	t.mu.Lock()
	t.beginLocked()
	t.live += uint64(n)
	if !t.sampled {
		t.cur.Bytes = t.live
	}
	t.mu.Unlock()
}

// setSRT records the running connection's statistics; its counters are
// the session's.
func (t *tracker) setSRT(s *SRTStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.SRT = s
	if s == nil {
		return
	}
	t.beginLocked()
	if s.stale && t.sampled {
		// the socket was gone before its final counters were read: keep
		// Bytes at the last sample, with the wire counters it goes with
		return
	}
	t.sampled = true
	t.cur.Bytes = t.live
	t.cur.WireBytes = s.WireBytes
	t.cur.PacketsSent, t.cur.PacketsRecv = s.PacketsSent, s.PacketsRecv
	t.cur.PacketsLost, t.cur.Retransmits, t.cur.Drops = s.PacketsLost, s.Retransmits, s.Drops
}

// backoff computes the wait before attempt n of a failing run (n >= 1).
func backoff(min, max time.Duration, fails int) time.Duration {
	d := min
	for i := 1; i < fails && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

var secretRE = regexp.MustCompile(`(?i)((?:^|[?&,;:]|%3F|%26|%2C)(?:passphrase|token|t|key|secret|password)(?:=|%3D))([^&,;#]*)`)

// Redact hides passphrases, tokens and URL passwords in a target URL so it
// can be shown and logged.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
			raw = strings.Replace(u.String(), "REDACTED", "xxxxx", 1)
		}
	}
	return secretRE.ReplaceAllStringFunc(raw, func(m string) string {
		sub := secretRE.FindStringSubmatch(m)
		if sub[2] == "" {
			return m
		}
		return sub[1] + "xxxxx"
	})
}

// scheme returns the lower-case scheme of a target URL.
func scheme(raw string) (string, *url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("bad target URL %q: %w", Redact(raw), err)
	}
	if u.Host == "" {
		return "", nil, fmt.Errorf("bad target URL %q: no host", Redact(raw))
	}
	return strings.ToLower(u.Scheme), u, nil
}
