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

	gosrt "github.com/datarhei/gosrt"

	"github.com/relaymesh/relaymesh/media"
)

// Defaults.
const (
	DefaultLatency         = 120 * time.Millisecond
	DefaultPeerIdleTimeout = 10 * time.Second
	DefaultReadTimeout     = 10 * time.Second
	DefaultWriteTimeout    = 5 * time.Second
	// DefaultHandshakeWait bounds the part of PlayWait spent before the
	// handshake is answered: libsrt callers (ffmpeg, srt-live-transmit)
	// give up connecting after 3 s (SRTO_CONNTIMEO), of which the caller's
	// own round trips take a part.
	DefaultHandshakeWait = 1500 * time.Millisecond
	// MessageSize is the payload of one SRT message: 7 TS packets.
	MessageSize = 7 * 188
)

// StreamOptions override the listener's settings for one stream (app/name).
type StreamOptions struct {
	// PublishPassphrase and ReadPassphrase replace the listener's; "-"
	// means no encryption for this stream even if the listener has one.
	PublishPassphrase string
	ReadPassphrase    string
}

// AuthorizeFunc decides whether remote may do action ("publish" or "read")
// on key with token. A non-nil error refuses the connection; its text is
// logged.
type AuthorizeFunc func(ctx context.Context, action, key, token string, remote net.Addr) error

// Config is the listener's configuration.
type Config struct {
	Listen string // host:port (UDP)
	// Latency is the SRT receive latency (TSBPD delay) the listener
	// offers; the larger of it and the caller's wins. Default 120ms.
	Latency time.Duration
	// Passphrases (10..80 characters) for publishers and readers. Empty
	// means unencrypted. The key length (pbkeylen 16/24/32) is the
	// caller's choice, as with libsrt listeners.
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
	// Streams holds per-stream overrides keyed by app/name.
	Streams map[string]StreamOptions
	// Authorize, if set, is asked before a connection is accepted.
	Authorize AuthorizeFunc
	// PlayWait is how long a reader of a stream that is not live here
	// waits for it (the hub's OnMissing may start a pull meanwhile);
	// 0 = refuse such a reader at once. The first HandshakeWait of it is
	// spent before the handshake is answered, so a stream that arrives by
	// then is served as if it had been live, and one that never arrives
	// is refused with "not found"; the rest is spent after accepting, and
	// a reader whose stream did not arrive by then is disconnected.
	PlayWait time.Duration
	// HandshakeWait bounds the wait inside the handshake (default 1.5s).
	HandshakeWait time.Duration
	// DSCP marks every packet the listener sends (IPv4 TOS = DSCP << 2);
	// 0 = unmarked.
	DSCP int
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
	if c.HandshakeWait == 0 {
		c.HandshakeWait = DefaultHandshakeWait
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
		checkPass(fmt.Sprintf("streams[%q].publish_passphrase", k), o.PublishPassphrase)
		checkPass(fmt.Sprintf("streams[%q].read_passphrase", k), o.ReadPassphrase)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"peer_idle_timeout", c.PeerIdleTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout},
		{"play_wait", c.PlayWait}, {"handshake_wait", c.HandshakeWait}} {
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
	if c.HandshakeWait > 2500*time.Millisecond {
		errs = append(errs, fmt.Errorf("handshake_wait: %s is too close to the 3s callers wait for an answer", c.HandshakeWait))
	}
	if c.DSCP < 0 || c.DSCP > 63 {
		errs = append(errs, fmt.Errorf("dscp: %d is outside 0..63", c.DSCP))
	}
	return errors.Join(errs...)
}

// ConnStats describes one SRT connection for the API.
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
	LinkMbps        float64   `json:"link_mbps"`
	SendMbps        float64   `json:"send_mbps"`
	RecvMbps        float64   `json:"recv_mbps"`
	Encrypted       bool      `json:"encrypted"`
}

// Server is an SRT listener attached to a hub.
type Server struct {
	cfg Config
	hub *media.Hub
	log *slog.Logger
	ln  gosrt.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[*session]struct{}
	pending  int
	closed   atomic.Bool
	once     sync.Once

	refused atomic.Uint64
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
	ln, err := gosrt.Listen("srt", cfg.Listen, listenConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("srt: listen on %s: %w", cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, hub: hub, log: log, ln: ln,
		ctx: ctx, cancel: cancel,
		sessions: map[*session]struct{}{},
	}, nil
}

// listenConfig is the gosrt configuration of the listener.
func listenConfig(cfg Config) gosrt.Config {
	sc := gosrt.DefaultConfig()
	sc.ReceiverLatency = cfg.Latency
	sc.PeerLatency = cfg.Latency
	sc.PeerIdleTimeout = cfg.PeerIdleTimeout
	sc.IPTOS = cfg.DSCP << 2
	return sc
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
	for {
		req, err := s.ln.Accept2()
		if err != nil {
			if s.closed.Load() || errors.Is(err, gosrt.ErrListenerClosed) {
				return nil
			}
			return fmt.Errorf("srt: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			req.Reject(gosrt.REJ_CLOSE)
			continue
		}
		s.pending++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(req)
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
			ss.conn.Close()
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
	var st gosrt.Statistics
	for _, ss := range list {
		ss.conn.Stats(&st)
		c := ConnStats{
			ID: ss.conn.SocketId(), Stream: ss.key, Role: ss.role, Remote: ss.remote,
			Since: ss.since, Encrypted: ss.encrypted,
			RTTMs:           st.Instantaneous.MsRTT,
			PacketsSent:     st.Accumulated.PktSent,
			PacketsReceived: st.Accumulated.PktRecv,
			Retransmits:     st.Accumulated.PktRetrans + st.Accumulated.PktRecvRetrans,
			Drops:           st.Accumulated.PktSendDrop + st.Accumulated.PktRecvDrop,
			RecvBufferMs:    st.Instantaneous.MsRecvBuf,
			SendBufferMs:    st.Instantaneous.MsSendBuf,
			LinkMbps:        st.Instantaneous.MbpsLinkCapacity,
			SendMbps:        st.Instantaneous.MbpsSentRate,
			RecvMbps:        st.Instantaneous.MbpsRecvRate,
		}
		if ss.role == ActionPublish {
			c.PacketsLost = st.Accumulated.PktRecvLoss
		} else {
			c.PacketsLost = st.Accumulated.PktSendLoss
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

// refusal is a rejected connection request: the code the caller sees and
// the reason we log.
type refusal struct {
	code   gosrt.RejectionReason
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(code gosrt.RejectionReason, format string, a ...any) *refusal {
	return &refusal{code: code, reason: fmt.Sprintf(format, a...)}
}

func (s *Server) passphrase(action, key string) string {
	p := s.cfg.PublishPassphrase
	if action == ActionRead {
		p = s.cfg.ReadPassphrase
	}
	if o, ok := s.cfg.Streams[key]; ok {
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

// admit decides on a request and attaches it to the hub.
func (s *Server) admit(req gosrt.ConnRequest) (*session, *refusal) {
	remote := req.RemoteAddr()
	if s.cfg.MaxConns > 0 {
		s.mu.Lock()
		n := len(s.sessions) + s.pending - 1
		s.mu.Unlock()
		if n >= s.cfg.MaxConns {
			return nil, refuse(gosrt.REJX_OVERLOAD, "too many SRT connections (limit %d)", s.cfg.MaxConns)
		}
	}
	if req.Version() != 5 {
		return nil, refuse(gosrt.REJX_BAD_REQUEST, "SRT handshake v%d carries no streamid; use SRT >= 1.3 and streamid=publish:app/name", req.Version())
	}
	id, err := ParseStreamID(req.StreamId())
	if err != nil {
		return nil, refuse(gosrt.REJX_BAD_REQUEST, "%v", err)
	}
	pass := s.passphrase(id.Action, id.Key)
	switch {
	case pass != "" && !req.IsEncrypted():
		return nil, refuse(gosrt.REJ_UNSECURE, "%s %s needs a passphrase and the caller sent none", id.Action, id.Key)
	case pass == "" && req.IsEncrypted():
		return nil, refuse(gosrt.REJ_UNSECURE, "%s %s is not encrypted but the caller sent a passphrase", id.Action, id.Key)
	case pass != "":
		if err := req.SetPassphrase(pass); err != nil {
			return nil, refuse(gosrt.REJ_BADSECRET, "%s %s: wrong passphrase", id.Action, id.Key)
		}
	}
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(s.ctx, id.Action, id.Key, id.Token, remote); err != nil {
			return nil, refuse(gosrt.REJX_UNAUTHORIZED, "%s %s not authorized: %v", id.Action, id.Key, err)
		}
	}
	ss := &session{s: s, key: id.Key, role: id.Action, remote: remote.String(), since: time.Now(), encrypted: pass != ""}
	if id.Action == ActionPublish {
		info := media.PublisherInfo{Protocol: "srt", Remote: ss.remote, Native: media.FormatTS}
		pub, err := s.hub.Publish(id.Key, info)
		if errors.Is(err, media.ErrStreamBusy) && s.ownStalePublisher(id.Key, remote) {
			// The same host is publishing again: its earlier session is
			// one whose handshake answer was lost, or a dead connection
			// SRT has not timed out yet. The new session replaces it.
			info.Takeover = true
			pub, err = s.hub.Publish(id.Key, info)
		}
		if err != nil {
			return nil, refuse(hubCode(err), "publish %s: %v", id.Key, err)
		}
		ss.pub = pub
		return ss, nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ss.cancel = cancel
	opt := media.SubscribeOptions{Format: media.FormatTS, Info: media.ReaderInfo{Protocol: "srt", Remote: ss.remote}}
	r, err := s.hub.Subscribe(ctx, id.Key, opt)
	if err != nil && errors.Is(err, media.ErrNoStream) && s.cfg.PlayWait > 0 {
		r, err = s.waitStream(ctx, ss, opt)
	}
	if err != nil {
		cancel()
		return nil, refuse(hubCode(err), "read %s: %v", id.Key, err)
	}
	ss.reader = r
	return ss, nil
}

// subResult is the outcome of a Subscribe that waits for its stream.
type subResult struct {
	r   *media.Reader
	err error
}

// waitStream subscribes with PlayWait in the background and waits for it
// at most HandshakeWait. A reader or an error that comes by then is
// returned; otherwise (nil, nil) and ss.waitc delivers the outcome to the
// accepted connection.
func (s *Server) waitStream(ctx context.Context, ss *session, opt media.SubscribeOptions) (*media.Reader, error) {
	opt.Wait = s.cfg.PlayWait
	ch := make(chan subResult, 1)
	go func() {
		r, err := s.hub.Subscribe(ctx, ss.key, opt)
		ch <- subResult{r, err}
	}()
	t := time.NewTimer(min(s.cfg.PlayWait, s.cfg.HandshakeWait))
	defer t.Stop()
	select {
	case res := <-ch:
		return res.r, res.err
	case <-t.C:
	}
	select {
	case res := <-ch: // a result at the very end of the wait
		return res.r, res.err
	default:
	}
	ss.waitc = ch
	return nil, nil
}

// wireCode maps gosrt's extended rejection codes (1400...) to what libsrt
// expects on the wire (1000 + SRT_REJX_*), so ffmpeg and srt-live-transmit
// show the code instead of "Unknown or erroneous". gosrt v0.11.0 sends
// its REJX_ constants without the 1000 offset.
func wireCode(c gosrt.RejectionReason) gosrt.RejectionReason {
	if c >= 1400 && c < 2000 {
		return c + 1000
	}
	return c
}

func hubCode(err error) gosrt.RejectionReason {
	switch {
	case errors.Is(err, media.ErrNoStream):
		return gosrt.REJX_NOTFOUND
	case errors.Is(err, media.ErrStreamBusy):
		return gosrt.REJX_CONFLICT
	case errors.Is(err, media.ErrTooManyPubs), errors.Is(err, media.ErrTooManyReaders):
		return gosrt.REJX_OVERLOAD
	case errors.Is(err, media.ErrBadStreamKey):
		return gosrt.REJX_BAD_REQUEST
	case errors.Is(err, media.ErrHubClosed):
		return gosrt.REJ_CLOSE
	}
	return gosrt.REJX_ISE
}

func (s *Server) handle(req gosrt.ConnRequest) {
	ss, ref := s.admit(req)
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
	if ref != nil {
		s.refused.Add(1)
		req.Reject(wireCode(ref.code))
		s.log.Warn("srt connection refused", "remote", req.RemoteAddr().String(), "streamid", req.StreamId(), "code", int(ref.code), "reason", ref.reason)
		return
	}
	conn, err := req.Accept()
	if err != nil {
		ss.release()
		s.log.Warn("srt handshake failed", "remote", ss.remote, "stream", ss.key, "err", err)
		return
	}
	ss.conn = conn
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		conn.Close()
		ss.release()
		return
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	log := s.log.With("stream", ss.key, "role", ss.role, "remote", ss.remote)
	log.Info("srt connection open", "encrypted", ss.encrypted)
	var runErr error
	if ss.role == ActionPublish {
		runErr = ss.publish()
	} else {
		runErr = ss.read()
	}
	conn.Close()
	ss.release()
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	if runErr != nil {
		log.Warn("srt connection closed", "reason", runErr.Error())
	} else {
		log.Info("srt connection closed")
	}
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
