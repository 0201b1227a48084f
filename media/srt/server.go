// Package srt is relaymesh's SRT listener: publishers push MPEG-TS into the
// hub (both lanes, through mpegts.Demuxer) and readers pull the TS lane.
package srt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
)

// Defaults.
const (
	DefaultLatency         = 120 * time.Millisecond
	DefaultPeerIdleTimeout = 10 * time.Second
	DefaultReadTimeout     = 10 * time.Second
	DefaultWriteTimeout    = 5 * time.Second
	// MessageSize is the payload of one SRT message: 7 TS packets.
	MessageSize = 7 * 188
)

// StreamOptions override the listener's settings for one stream (app/name).
type StreamOptions struct {
	// PublishPassphrase and ReadPassphrase replace the listener's; "-"
	// means no encryption for this stream even if the listener has one.
	PublishPassphrase string
	ReadPassphrase    string
	// Latency replaces the listener's for this stream's connections (0 =
	// the listener's); as always the larger of it and the caller's wins.
	Latency time.Duration
}

// Config is the listener's configuration.
type Config struct {
	Listen string // host:port (UDP)
	// Latency is the SRT receive latency (TSBPD delay) the listener
	// offers; the larger of it and the caller's wins. Default 120ms.
	Latency time.Duration
	// LatencyFor, if set, gives the latency of one connection from the
	// caller's address (the backbone: from the RTT to that node); 0 means
	// Latency. A stream's own Latency takes precedence. It runs inside
	// the handshake and must not block.
	LatencyFor func(remote net.Addr) time.Duration
	// Passphrases (10..80 characters) for publishers and readers. Empty
	// means unencrypted. The key length (pbkeylen 16/24/32) is the
	// caller's choice: libsrt 1.5's listener takes the caller's.
	PublishPassphrase string
	ReadPassphrase    string
	// PeerIdleTimeout closes a connection whose peer sent nothing, not
	// even keepalives. Default 10s.
	PeerIdleTimeout time.Duration
	// ReadTimeout closes a publisher that sent no media for this long.
	// Default 10s.
	ReadTimeout time.Duration
	// WriteTimeout closes a reader whose send queue stayed full this long.
	// Default 5s.
	WriteTimeout time.Duration
	// MaxBitrate caps each publisher of this listener, bits/s over 4 s
	// (0 = only the hub's limit).
	MaxBitrate int64
	// MaxConns caps connections on this listener (0 = unlimited).
	MaxConns int
	// Budget, if set, bounds the receive buffers of the node's accepted
	// SRT connections (shared by its listeners); a handshake whose buffer
	// does not fit is refused with RejXOverload. nil = unbounded.
	Budget *Budget
	// BudgetCountOnly: this listener's connections are counted in Budget
	// but never refused for it. The backbone's: its callers are the
	// cluster's members (Authorize admits no one else), so callers of the
	// public SRT listener that fill the budget cannot keep an edge's
	// uplink out, while the members' buffers still leave the public
	// listener less.
	BudgetCountOnly bool
	// Streams holds per-stream overrides keyed by app/name.
	Streams map[string]StreamOptions
	// StreamOptionsFor, if set, is asked first for a stream's overrides
	// (a flow's srt-listener source or output); it runs inside the
	// handshake and must not block.
	StreamOptionsFor func(action, key string) (StreamOptions, bool)
	// Authorize, if set, is asked before a connection is accepted
	// (protocol "srt", action "publish" or "play" for a streamid's read).
	// A non-nil error refuses the connection; its text is logged. It runs
	// inside libsrt's handshake, on the thread that serves the listener's
	// port: it must not block (no I/O, no waits).
	Authorize media.Authorizer
	// BeforePublish, if set, is called for an accepted publisher before
	// it is attached to the hub, and may block (the backbone ends an
	// on-demand pull of the stream there). A listener with BeforePublish
	// checks whether the stream is busy after it, not in the handshake.
	BeforePublish func(key string)
	// PlayWait is how long a reader of a stream that is not live here
	// waits for it (the hub's OnMissing may start a pull meanwhile);
	// 0 = refuse such a reader at once with "not found". The wait is
	// spent after the handshake (libsrt answers handshakes on the thread
	// that serves every connection of the port, which must not wait):
	// the reader is accepted and gets nothing until the stream arrives,
	// and is disconnected if it does not arrive in time.
	PlayWait time.Duration
	// DSCP marks every packet the listener sends (IPv4 TOS = DSCP << 2);
	// 0 = unmarked.
	DSCP int
	// EveryLossReport makes the listener's connections retransmit at
	// every loss report (libsrt.Options.EveryLossReport): the backbone,
	// whose readers (on-demand pulls) must get every frame over a lossy
	// WAN. Like DSCP it belongs to the socket.
	EveryLossReport bool
	// PublishTakeover lets a new publisher replace a live one at once
	// (the backbone: a new uplink for a live key is the stream's newest
	// source, e.g. the broadcaster republished through another edge;
	// only cluster members may publish there).
	PublishTakeover bool
	// Divert, if set, is asked for each accepted publisher; a non-nil run
	// takes the connection instead of the hub and returns when it is done
	// with it (the backbone's dual-path legs, RTP-framed).
	Divert func(id StreamID, remote net.Addr) (run func(conn *libsrt.Conn) error)
}

func (c *Config) setDefaults() {
	if c.Latency == 0 {
		c.Latency = DefaultLatency
	}
	if c.PeerIdleTimeout == 0 {
		c.PeerIdleTimeout = DefaultPeerIdleTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
}

// Validate reports every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err))
	}
	if c.Latency < 0 || c.Latency > 60*time.Second {
		errs = append(errs, fmt.Errorf("latency: %s is outside 0..60s", c.Latency))
	}
	checkPass := func(field, p string) {
		if p != "" && p != "-" && (len(p) < 10 || len(p) > 80) {
			errs = append(errs, fmt.Errorf("%s: must be 10 to 80 characters (got %d)", field, len(p)))
		}
	}
	checkPass("publish_passphrase", c.PublishPassphrase)
	checkPass("read_passphrase", c.ReadPassphrase)
	for k, o := range c.Streams {
		if err := media.CheckKey(k); err != nil {
			errs = append(errs, fmt.Errorf("streams[%q]: %w", k, err))
		}
		if o.Latency < 0 || o.Latency > 60*time.Second {
			errs = append(errs, fmt.Errorf("streams[%q].latency: %s is outside 0..60s", k, o.Latency))
		}
		checkPass(fmt.Sprintf("streams[%q].publish_passphrase", k), o.PublishPassphrase)
		checkPass(fmt.Sprintf("streams[%q].read_passphrase", k), o.ReadPassphrase)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"peer_idle_timeout", c.PeerIdleTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"play_wait", c.PlayWait}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative", d.name, d.v))
		}
	}
	if c.MaxBitrate < 0 {
		errs = append(errs, fmt.Errorf("max_bitrate: %d is negative", c.MaxBitrate))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max_connections: %d is negative", c.MaxConns))
	}
	if c.DSCP < 0 || c.DSCP > 63 {
		errs = append(errs, fmt.Errorf("dscp: %d is outside 0..63", c.DSCP))
	}
	return errors.Join(errs...)
}

// ConnStats describes one SRT connection for the API. The counters are
// libsrt's own (srt_bistats).
type ConnStats struct {
	ID              uint32    `json:"id"`
	Stream          string    `json:"stream"`
	Role            string    `json:"role"` // "publish" or "read"
	Remote          string    `json:"remote"`
	Since           time.Time `json:"since"`
	RTTMs           float64   `json:"rtt_ms"`
	PacketsSent     uint64    `json:"packets_sent"`
	PacketsReceived uint64    `json:"packets_received"`
	PacketsLost     uint64    `json:"packets_lost"` // receiver-side loss (publish) or sender-side (read)
	Retransmits     uint64    `json:"retransmits"`
	Drops           uint64    `json:"drops"`
	RecvBufferMs    uint64    `json:"recv_buffer_ms"`
	SendBufferMs    uint64    `json:"send_buffer_ms"`
	// ReceiveBufferBytes is the receive buffer libsrt may fill for this
	// connection (SRTO_RCVBUF), what it holds of the node's budget.
	ReceiveBufferBytes int64   `json:"receive_buffer_bytes"`
	LinkMbps           float64 `json:"link_mbps"`
	SendMbps           float64 `json:"send_mbps"`
	RecvMbps           float64 `json:"recv_mbps"`
	Encrypted          bool    `json:"encrypted"`
	KeyLength          int     `json:"key_length,omitempty"` // AES key bytes (16, 24, 32)
	// LatencyMs is the negotiated TSBPD delay of the connection's
	// receiving side: ours for a publisher, the reader's for a reader.
	LatencyMs int `json:"latency_ms"`
}

// Server is an SRT listener attached to a hub.
type Server struct {
	cfgp atomic.Pointer[Config]
	hub  *media.Hub
	log  *slog.Logger
	ln   *libsrt.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[*session]struct{}
	changed  chan struct{} // closed and replaced when a session opens or closes
	closed   atomic.Bool
	once     sync.Once

	refused atomic.Uint64
	// refusals carries refusals decided on libsrt's thread to the
	// goroutine that logs them; when it is full they are only counted.
	refusals chan refusalLog
}

type refusalLog struct {
	remote, streamID string
	code             int
	reason           string
}

// New validates cfg and binds the UDP socket.
func New(cfg Config, hub *media.Hub, log *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("srt: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "srt")
	if w := CheckUDPBuffers(); w != "" {
		log.Warn(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		hub: hub, log: log,
		ctx: ctx, cancel: cancel,
		sessions: map[*session]struct{}{},
		changed:  make(chan struct{}),
		refusals: make(chan refusalLog, 256),
	}
	s.cfgp.Store(&cfg)
	ln, err := libsrt.Listen(cfg.Listen, libsrt.ListenConfig{
		Options: libsrt.Options{
			Latency:         cfg.Latency,
			PeerIdleTimeout: cfg.PeerIdleTimeout,
			IPTOS:           cfg.DSCP << 2,
			UDPRcvBuf:       MinUDPBuffer,
			EveryLossReport: cfg.EveryLossReport,
		},
		Backlog: 128,
		Decide:  s.decide,
		Failed:  s.failed,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("srt: listen on %s: %w", cfg.Listen, err)
	}
	s.ln = ln
	return s, nil
}

func (s *Server) conf() *Config { return s.cfgp.Load() }

// SetConfig applies a changed configuration to new connections:
// passphrases, per-stream options, latency, timeouts, limits and hooks.
// Listen and DSCP belong to the socket and need a new Server; a cfg that
// changes them, or is invalid, is refused and nothing changes.
func (s *Server) SetConfig(cfg Config) error {
	commit, err := s.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare checks cfg against the server in force without changing it;
// commit puts cfg in force for the connections accepted after it (the
// latency, passphrases, per-stream options, timeouts and the connection
// limit). Listen and DSCP need a new server.
func (s *Server) Prepare(cfg Config) (commit func(), err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("srt: %w", err)
	}
	old := s.conf()
	if cfg.Listen != old.Listen || cfg.DSCP != old.DSCP || cfg.EveryLossReport != old.EveryLossReport {
		return nil, fmt.Errorf("srt: listen, dscp and the retransmission rule need a new listener")
	}
	return func() { s.cfgp.Store(&cfg) }, nil
}

// Addr returns the bound UDP address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Refused returns how many connection requests were refused.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Run accepts connections until ctx ends or Close is called.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	defer s.wg.Wait()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.logRefusals()
	}()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.closed.Load() || errors.Is(err, libsrt.ErrClosed) {
				return nil
			}
			return fmt.Errorf("srt: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			conn.CloseNow()
			continue
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(conn)
		}()
	}
}

// Close stops the listener and closes every connection. It is idempotent.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		if s.ln != nil {
			s.ln.Close()
		}
		s.mu.Lock()
		for ss := range s.sessions {
			ss.conn.CloseNow()
		}
		s.mu.Unlock()
	})
	return nil
}

// Stats returns the live connections' SRT statistics, sorted by stream.
func (s *Server) Stats() []ConnStats {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	out := make([]ConnStats, 0, len(list))
	for _, ss := range list {
		st := ss.conn.Stats()
		c := ConnStats{
			ID: ss.conn.ID(), Stream: ss.key, Role: ss.role, Remote: ss.remote,
			Since: ss.since, Encrypted: ss.encrypted, KeyLength: ss.keyLen, ReceiveBufferBytes: ss.rcvBuf,
			RTTMs:           st.RTTMs,
			PacketsSent:     st.PacketsSent,
			PacketsReceived: st.PacketsReceived,
			Retransmits:     st.Retransmits + st.RecvRetransmits,
			Drops:           st.SendDrops + st.RecvDrops,
			RecvBufferMs:    uint64(max(st.RecvBufferMs, 0)),
			SendBufferMs:    uint64(max(st.SendBufferMs, 0)),
			LinkMbps:        st.LinkMbps,
			SendMbps:        st.SendMbps,
			RecvMbps:        st.RecvMbps,
		}
		if ss.role == ActionPublish {
			c.PacketsLost = st.PacketsRecvLost
			c.LatencyMs = st.RecvLatencyMs
		} else {
			c.PacketsLost = st.PacketsSendLost
			c.LatencyMs = st.PeerLatencyMs
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stream != out[j].Stream {
			return out[i].Stream < out[j].Stream
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// admission is what the handshake decided for a connection.
type admission struct {
	raw    string // the streamid as sent
	id     StreamID
	remote net.Addr
	pass   bool  // a passphrase was required
	rcvBuf int64 // bytes reserved in the budget
}

// streamOptions returns the overrides of one stream.
func (s *Server) streamOptions(action, key string) (StreamOptions, bool) {
	cfg := s.conf()
	if cfg.StreamOptionsFor != nil {
		if o, ok := cfg.StreamOptionsFor(action, key); ok {
			return o, true
		}
	}
	o, ok := cfg.Streams[key]
	return o, ok
}

func (s *Server) passphrase(action, key string) string {
	p := s.conf().PublishPassphrase
	if action == ActionRead {
		p = s.conf().ReadPassphrase
	}
	if o, ok := s.streamOptions(action, key); ok {
		op := o.PublishPassphrase
		if action == ActionRead {
			op = o.ReadPassphrase
		}
		if op != "" {
			p = op
		}
	}
	if p == "-" {
		p = ""
	}
	return p
}

func (s *Server) latency(action, key string, remote net.Addr) time.Duration {
	cfg := s.conf()
	if o, ok := s.streamOptions(action, key); ok && o.Latency > 0 {
		return o.Latency
	}
	if cfg.LatencyFor != nil {
		if d := cfg.LatencyFor(remote); d > 0 {
			return d
		}
	}
	return s.conf().Latency
}

// decide answers a handshake. It runs on libsrt's receive thread of the
// listener's port and must not block: it reads the hub's state but
// attaches nothing (that happens once the handshake completed).
func (s *Server) decide(req libsrt.Request) libsrt.Decision {
	code, reason, adm := s.check(req)
	if code != 0 {
		s.refuse(req.Remote.String(), req.StreamID, code, reason)
		return libsrt.Decision{Reject: code}
	}
	lat := s.latency(adm.id.Action, adm.id.Key, req.Remote)
	d := libsrt.Decision{Latency: lat, PeerIdleTimeout: s.conf().PeerIdleTimeout, Tag: adm}
	d.FC, d.RcvBuf = connBuffers(adm.id.Action == ActionPublish, lat, s.maxBitrate())
	// last: a handshake refused for another reason reserves nothing;
	// libsrt calls d.Release when the connection or its handshake ends
	// a same-host publisher taking over its stale session (the rule
	// check applied) frees that session's buffer when it attaches: it
	// counts as available, once (one handshake at a time may claim it)
	var freeing int64
	stale := s.staleSession(adm.id, req.Remote)
	if stale != nil && stale.freeing.CompareAndSwap(false, true) {
		freeing = stale.rcvBuf
	} else {
		stale = nil
	}
	release, err := s.conf().Budget.reserveFreeing(int64(d.RcvBuf), freeing, s.conf().BudgetCountOnly)
	if stale != nil {
		if err != nil {
			stale.freeing.Store(false)
		} else {
			// the claim lasts as long as this handshake or connection
			rel := release
			release = func() { rel(); stale.freeing.Store(false) }
		}
	}
	if err != nil {
		s.refuse(req.Remote.String(), req.StreamID, libsrt.RejXOverload, fmt.Sprintf("%s %s: %v", adm.id.Action, adm.id.Key, err))
		return libsrt.Decision{Reject: libsrt.RejXOverload}
	}
	d.Release, adm.rcvBuf = release, int64(d.RcvBuf)
	if p := s.passphrase(adm.id.Action, adm.id.Key); p != "" {
		d.Passphrase = p
		adm.pass = true
	}
	return d
}

// maxBitrate is the lower of the listener's and the hub's publisher
// bitrate limits, 0 when neither is set.
func (s *Server) maxBitrate() int64 {
	l, h := s.conf().MaxBitrate, s.hub.MaxBitrate()
	if l == 0 || (h > 0 && h < l) {
		return h
	}
	return l
}

func (s *Server) check(req libsrt.Request) (int, string, *admission) {
	if s.closed.Load() {
		return libsrt.RejClose, "the listener is closing", nil
	}
	if s.conf().MaxConns > 0 {
		// under s.mu: handle admits a connection (out of the
		// listener's Pending) only after it is in sessions
		s.mu.Lock()
		n := len(s.sessions) + s.ln.Pending()
		s.mu.Unlock()
		if n >= s.conf().MaxConns {
			return libsrt.RejXOverload, fmt.Sprintf("too many SRT connections (limit %d)", s.conf().MaxConns), nil
		}
	}
	if req.HSVersion != 5 {
		return libsrt.RejXBadRequest, fmt.Sprintf("SRT handshake v%d carries no streamid; use SRT >= 1.3 and streamid=publish:app/name", req.HSVersion), nil
	}
	id, err := ParseStreamID(req.StreamID)
	if err != nil {
		return libsrt.RejXBadRequest, err.Error(), nil
	}
	if s.conf().Authorize != nil {
		action := id.Action
		if action == ActionRead {
			action = "play" // a read is a play to the node's gates
		}
		if err := s.conf().Authorize(media.Access{Protocol: "srt", Action: action, Key: id.Key, Token: id.Token, Remote: req.Remote}); err != nil {
			return libsrt.RejXUnauthorized, fmt.Sprintf("%s %s not authorized: %v", id.Action, id.Key, err), nil
		}
	}
	st := s.hub.Stream(id.Key)
	switch {
	case id.Action == ActionPublish && s.conf().BeforePublish == nil && st != nil:
		if p, ok := st.Publisher(); ok && !s.hub.TakesOver() && !s.ownStalePublisher(id.Key, req.Remote) {
			return libsrt.RejXConflict, fmt.Sprintf("publish %s: %v by %s", id.Key, media.ErrStreamBusy, p.Remote), nil
		}
	case id.Action == ActionRead && s.conf().PlayWait == 0 && !live(st):
		return libsrt.RejXNotFound, fmt.Sprintf("read %s: %v", id.Key, media.ErrNoStream), nil
	}
	return 0, "", &admission{raw: req.StreamID, id: id, remote: req.Remote}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func live(st *media.Stream) bool {
	if st == nil {
		return false
	}
	_, ok := st.Publisher()
	return ok
}

// refuse counts a refusal and hands it to the logging goroutine.
func (s *Server) refuse(remote, streamID string, code int, reason string) {
	s.refused.Add(1)
	select {
	case s.refusals <- refusalLog{remote: remote, streamID: streamID, code: code, reason: reason}:
	default:
	}
}

func (s *Server) logRefusals() {
	for {
		select {
		case r := <-s.refusals:
			s.log.Warn("srt connection refused", "remote", r.remote, "streamid", r.streamID, "code", r.code, "reason", r.reason)
		case <-s.ctx.Done():
			return
		}
	}
}

// failed reports a handshake decide accepted and libsrt then refused:
// the passphrase did not match what the stream needs.
func (s *Server) failed(tag any, reason int) {
	adm, _ := tag.(*admission)
	if adm == nil {
		return
	}
	var why string
	switch {
	case reason == libsrt.RejBadSecret:
		why = "wrong passphrase"
	case reason == libsrt.RejUnsecure && adm.pass:
		why = "needs a passphrase and the caller sent none"
	case reason == libsrt.RejUnsecure:
		why = "is not encrypted but the caller sent a passphrase"
	default:
		why = libsrt.RejectText(reason)
	}
	s.refuse(adm.remote.String(), adm.raw, reason, fmt.Sprintf("%s %s: %s", adm.id.Action, adm.id.Key, why))
}

// attach connects an accepted connection to the hub.
func (s *Server) attach(ss *session, adm *admission) error {
	key := adm.id.Key
	if d := s.conf().Divert; d != nil && adm.id.Action == ActionPublish {
		if ss.divert = d(adm.id, adm.remote); ss.divert != nil {
			return nil
		}
	}
	if adm.id.Action == ActionPublish {
		if s.conf().BeforePublish != nil {
			s.conf().BeforePublish(key)
		}
		info := media.PublisherInfo{Protocol: "srt", Remote: ss.remote, Native: media.FormatTS, Takeover: s.conf().PublishTakeover}
		// the same host publishing again: its earlier session is one
		// whose handshake answer was lost, or a dead connection SRT has
		// not timed out yet
		stale := s.staleSession(adm.id, adm.remote)
		pub, err := s.hub.Publish(key, info)
		if errors.Is(err, media.ErrStreamBusy) && s.ownStalePublisher(key, adm.remote) {
			// the new session replaces it
			info.Takeover = true
			pub, err = s.hub.Publish(key, info)
		}
		if err != nil {
			return fmt.Errorf("publish %s: %w", key, err)
		}
		if stale != nil && stale != ss {
			// replaced (by the rule above or the hub's takeover): closed
			// now, not at its read timeout, so its receive buffer is back
			// in the budget, where the handshake counted it as free
			stale.conn.CloseNow()
		}
		ss.pub = pub
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ss.cancel = cancel
	// the reader leaving ends a wait for the stream
	go func() {
		select {
		case <-ss.conn.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	opt := media.SubscribeOptions{Format: media.FormatTS, Info: media.ReaderInfo{Protocol: "srt", Remote: ss.remote}, Wait: s.conf().PlayWait}
	r, err := s.hub.Subscribe(ctx, key, opt)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	ss.reader = r
	return nil
}

func (s *Server) handle(conn *libsrt.Conn) {
	adm, _ := conn.Tag().(*admission)
	if adm == nil { // not decided by this server: cannot happen
		conn.CloseNow()
		return
	}
	ss := &session{s: s, conn: conn, key: adm.id.Key, role: adm.id.Action, remote: adm.remote.String(),
		since: time.Now(), encrypted: conn.Encrypted(), keyLen: conn.PBKeyLen(), rcvBuf: adm.rcvBuf}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		conn.CloseNow()
		return
	}
	s.sessions[ss] = struct{}{}
	conn.Admitted()
	s.changedLocked()
	s.mu.Unlock()
	log := s.log.With("stream", ss.key, "role", ss.role, "remote", ss.remote)
	runErr := s.attach(ss, adm)
	if runErr == nil {
		log.Info("srt connection open", "encrypted", ss.encrypted)
		if ss.divert != nil {
			runErr = ss.divert(conn)
		} else if ss.role == ActionPublish {
			runErr = ss.publish()
		} else {
			runErr = ss.read()
		}
	} else if !closed(conn.Done()) {
		// refused after the handshake (the stream was taken meanwhile,
		// or did not arrive within PlayWait): libsrt has accepted the
		// caller and has no way to send it a reject code now, so the
		// connection is closed and the caller sees it end
		s.refused.Add(1)
		runErr = fmt.Errorf("accepted, then closed: libsrt sends a caller no reject code after the handshake: %w", runErr)
	}
	if ss.linger {
		conn.Close()
	} else {
		conn.CloseNow()
	}
	ss.release()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.changedLocked()
	s.mu.Unlock()
	// what the link lost for good, for the operator (a publisher's
	// too-late drops are frames its readers never get)
	if st := conn.Stats(); st.RecvDrops+st.SendDrops > 0 || st.PacketsRecvLost > 0 {
		log = log.With("recv_lost", st.PacketsRecvLost, "recv_retransmits", st.RecvRetransmits,
			"recv_drops", st.RecvDrops, "recv_belated", st.RecvBelated, "send_drops", st.SendDrops, "rtt_ms", st.RTTMs)
	}
	if runErr != nil {
		log.Warn("srt connection closed", "reason", runErr.Error())
	} else {
		log.Info("srt connection closed")
	}
}

// Publishing returns the stream keys of the open publish sessions, as
// Stats would without reading each connection's statistics.
func (s *Server) Publishing() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for ss := range s.sessions {
		if ss.role == ActionPublish {
			out = append(out, ss.key)
		}
	}
	return out
}

// Changed returns a channel closed at the next session that opens or
// closes (Stats changes).
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// staleSession returns this listener's session of the stream's current
// publisher when id is a publish from the same host (ownStalePublisher:
// the one the takeover rule replaces), else nil.
func (s *Server) staleSession(id StreamID, remote net.Addr) *session {
	if id.Action != ActionPublish || !s.ownStalePublisher(id.Key, remote) {
		return nil
	}
	st := s.hub.Stream(id.Key)
	if st == nil {
		return nil
	}
	p, ok := st.Publisher()
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		if ss.role == ActionPublish && ss.key == id.Key && ss.remote == p.Remote {
			return ss
		}
	}
	return nil
}

// ownStalePublisher reports whether the stream's current publisher is an
// SRT publisher from the same host as remote.
func (s *Server) ownStalePublisher(key string, remote net.Addr) bool {
	st := s.hub.Stream(key)
	if st == nil {
		return false
	}
	p, ok := st.Publisher()
	if !ok || p.Protocol != "srt" {
		return false
	}
	old, _, err := net.SplitHostPort(p.Remote)
	if err != nil {
		return false
	}
	now, _, err := net.SplitHostPort(remote.String())
	return err == nil && old == now
}
