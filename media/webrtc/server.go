// Package webrtc serves live streams to WebRTC players (WHEP, RFC 9725's
// sibling draft) and takes WebRTC publishers (WHIP, RFC 9725) on the HTTP
// media listener: POST /APP/NAME/whep and POST /APP/NAME/whip, with the
// session resource (PATCH for trickle ICE, DELETE to end) at the Location
// the POST answers. All ICE traffic shares one UDP port.
package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	pwebrtc "github.com/pion/webrtc/v4"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/media"
)

// Authorizer decides whether a client may play or publish a stream
// (action "play" or "publish"); query carries the signed-URL token.
type Authorizer func(action, key, query string, remote net.Addr) error

// ICEServer is a STUN or TURN server used to gather candidates and
// advertised to clients in Link headers.
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// Config is the WebRTC endpoint's configuration.
type Config struct {
	// UDPListen is the one UDP address every ICE session shares.
	UDPListen string
	// Hosts are the addresses offered as host candidates (the mux's port);
	// empty = the addresses of the local interfaces.
	Hosts      []string
	ICEServers []ICEServer
	// MaxSessions bounds WHEP plus WHIP sessions on the node (0 = 256).
	MaxSessions int
	// ConnectTimeout is how long a session may take to connect over ICE
	// and DTLS before it is dropped (0 = 10 s).
	ConnectTimeout time.Duration
	// PlayWait is how long a WHEP reader waits for a stream not yet live.
	PlayWait  time.Duration
	Authorize Authorizer
}

// Limits on what one client may send.
const (
	maxSDPBytes        = 64 << 10
	maxPatchBytes      = 16 << 10
	maxPatches         = 64 // PATCH requests per session
	maxCandidatesPatch = 32
)

// Server runs WHEP and WHIP sessions.
type Server struct {
	cfg atomic.Pointer[Config]
	hub *media.Hub
	log *slog.Logger
	udp net.PacketConn
	mux *ice.UDPMuxDefault
	api *pwebrtc.API

	mu       sync.Mutex
	sessions map[string]*session
	opus     map[string]*opusShare // by stream key: see opusshare.go
	drops    ingestDrops           // what WHIP sessions dropped, for the metrics
	closed   bool

	wg   sync.WaitGroup
	once sync.Once
	done chan struct{}
}

// New binds the UDP port and builds the WebRTC stack.
// nackHistory is how many sent packets a track keeps for NACKs.
const nackHistory = 512

func New(cfg Config, hub *media.Hub, log *slog.Logger) (*Server, error) {
	normalize(&cfg)
	udp, err := net.ListenPacket("udp", cfg.UDPListen)
	if err != nil {
		return nil, fmt.Errorf("webrtc udp listen %s: %w", cfg.UDPListen, err)
	}
	s := &Server{hub: hub, log: log.With("component", "webrtc"), udp: udp, sessions: map[string]*session{}, opus: map[string]*opusShare{}, done: make(chan struct{})}
	s.cfg.Store(&cfg)
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	s.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: udp, Logger: lf.NewLogger("udpmux")})

	var se pwebrtc.SettingEngine
	se.LoggerFactory = lf
	se.SetICEUDPMux(s.mux)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4, pwebrtc.NetworkTypeUDP6})
	if len(cfg.Hosts) > 0 {
		se.SetNAT1To1IPs(cfg.Hosts, pwebrtc.ICECandidateTypeHost)
		se.SetIncludeLoopbackCandidate(true)
	} else if a, ok := udp.LocalAddr().(*net.UDPAddr); ok && a.IP.IsLoopback() {
		// bound to loopback on purpose: the mux's one address is the
		// only candidate (ice skips loopback ones unless told)
		se.SetIncludeLoopbackCandidate(true)
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me, err := mediaEngine()
	if err != nil {
		s.Close()
		return nil, err
	}
	ir := &interceptor.Registry{}
	// pion keeps 1024 sent packets per track for NACK answers by default
	// (about 1.7 MB of heap per WHEP session at 3 Mbit/s, most of a
	// session's memory); 512 still answers NACKs for the last ~0.7 s at
	// 8 Mbit/s, longer than a live player waits for a retransmission.
	if err := pwebrtc.RegisterDefaultInterceptorsWithOptions(me, ir,
		pwebrtc.WithNackResponderOptions(nack.ResponderSize(nackHistory))); err != nil {
		s.Close()
		return nil, fmt.Errorf("webrtc interceptors: %w", err)
	}
	s.api = pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se), pwebrtc.WithMediaEngine(me), pwebrtc.WithInterceptorRegistry(ir))
	return s, nil
}

func normalize(c *Config) {
	if c.MaxSessions <= 0 {
		c.MaxSessions = 256
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
}

// mediaEngine registers the codecs relaymesh carries without transcoding
// video: H.264 (several profiles, packetization mode 1), H.265 and Opus.
func mediaEngine() (*pwebrtc.MediaEngine, error) {
	me := &pwebrtc.MediaEngine{}
	fb := []pwebrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	video := []pwebrtc.RTPCodecParameters{
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 102},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: fb}, PayloadType: 104},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", RTCPFeedback: fb}, PayloadType: 106},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", RTCPFeedback: fb}, PayloadType: 112},
		{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 116},
	}
	for _, c := range video {
		if err := me.RegisterCodec(c, pwebrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("webrtc codec %s: %w", c.MimeType, err)
		}
	}
	opus := pwebrtc.RTPCodecParameters{RTPCodecCapability: pwebrtc.RTPCodecCapability{MimeType: pwebrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}
	if err := me.RegisterCodec(opus, pwebrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtc codec opus: %w", err)
	}
	return me, nil
}

// SetConfig applies a reloaded configuration; the UDP address, hosts and
// ICE servers are fixed at New.
func (s *Server) SetConfig(cfg Config) {
	old := s.cfg.Load()
	cfg.UDPListen, cfg.Hosts, cfg.ICEServers = old.UDPListen, old.Hosts, old.ICEServers
	normalize(&cfg)
	s.cfg.Store(&cfg)
}

// UDPAddr returns the bound ICE address.
func (s *Server) UDPAddr() net.Addr { return s.udp.LocalAddr() }

// SessionCount returns the live WHEP and WHIP sessions.
func (s *Server) SessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Run blocks until ctx ends, then closes every session.
func (s *Server) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	return s.Close()
}

// Close ends every session and releases the UDP port. Idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closed = true
		all := make([]*session, 0, len(s.sessions))
		for _, ss := range s.sessions {
			all = append(all, ss)
		}
		s.mu.Unlock()
		for _, ss := range all {
			ss.close("server closing")
		}
		s.wg.Wait()
		if s.mux != nil {
			err = s.mux.Close()
		}
		if cerr := s.udp.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	})
	return err
}

// Handles reports whether path (without the leading '/') is a WHEP or
// WHIP endpoint or session resource, so the HTTP listener routes it here.
func Handles(path string) bool {
	_, _, _, ok := route(strings.TrimPrefix(path, "/"))
	return ok
}

// route splits "app/name/whep" or "app/name/whep/ID".
func route(path string) (key, kind, id string, ok bool) {
	parts := strings.Split(path, "/")
	switch {
	case len(parts) == 3 && (parts[2] == "whep" || parts[2] == "whip"):
		return parts[0] + "/" + parts[1], parts[2], "", true
	case len(parts) == 4 && (parts[2] == "whep" || parts[2] == "whip") && parts[3] != "":
		return parts[0] + "/" + parts[1], parts[2], parts[3], true
	}
	return "", "", "", false
}

// ServeHTTP serves the WHEP and WHIP endpoints and session resources.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch")
	key, kind, id, ok := route(strings.TrimPrefix(r.URL.Path, "/"))
	if !ok {
		http.Error(w, "not found: WebRTC endpoints are /APP/NAME/whep and /APP/NAME/whip", http.StatusNotFound)
		return
	}
	if err := media.CheckKey(key); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		h.Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if id == "" {
		if r.Method != http.MethodPost {
			h.Set("Allow", "POST, OPTIONS")
			http.Error(w, "POST an SDP offer here", http.StatusMethodNotAllowed)
			return
		}
		s.post(w, r, key, kind)
		return
	}
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss == nil || ss.key != key || ss.kind != kind {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodDelete:
		ss.close("client ended the session")
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		ss.patch(w, r)
	default:
		h.Set("Allow", "PATCH, DELETE, OPTIONS")
		http.Error(w, "PATCH or DELETE a session", http.StatusMethodNotAllowed)
	}
}

// tokenQuery adds a bearer token to the query as the signed-URL token,
// so one Verify serves both ways of carrying it.
func tokenQuery(r *http.Request) string {
	q := r.URL.RawQuery
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(bearer) == "" {
		return q
	}
	if strings.Contains("&"+q, "&"+auth.QueryParam+"=") {
		return q // the URL's own token wins; two would be refused as malformed
	}
	t := auth.QueryParam + "=" + strings.TrimSpace(bearer)
	if q == "" {
		return t
	}
	return q + "&" + t
}

func (s *Server) post(w http.ResponseWriter, r *http.Request, key, kind string) {
	cfg := s.cfg.Load()
	log := s.log.With("remote", r.RemoteAddr, "stream", key, "kind", kind)
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/sdp" {
		http.Error(w, "the offer must be sent as Content-Type: application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	action := "play"
	if kind == "whip" {
		action = "publish"
	}
	if cfg.Authorize != nil {
		if err := cfg.Authorize(action, key, tokenQuery(r), remoteAddr(r)); err != nil {
			log.Warn(action+" refused", "reason", err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	body, ok := readBody(w, r, maxSDPBytes, "offer")
	if !ok {
		return
	}
	offer, err := checkOffer(body, kind)
	if err != nil {
		log.Warn("offer refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, err := newID()
	if err != nil {
		http.Error(w, "no session id", http.StatusInternalServerError)
		return
	}
	ss := &session{srv: s, id: id, key: key, kind: kind, log: log.With("session", id[:8]), remote: r.RemoteAddr}
	ss.ctx, ss.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		http.Error(w, media.ErrHubClosed.Error(), http.StatusServiceUnavailable)
		return
	case len(s.sessions) >= cfg.MaxSessions:
		s.mu.Unlock()
		log.Warn("session refused", "reason", "too many WebRTC sessions", "limit", cfg.MaxSessions)
		http.Error(w, fmt.Sprintf("too many WebRTC sessions on this node (limit %d)", cfg.MaxSessions), http.StatusServiceUnavailable)
		return
	}
	s.sessions[id] = ss
	s.wg.Add(1)
	s.mu.Unlock()

	var answer string
	var status int
	if kind == "whep" {
		answer, status, err = ss.startWHEP(r.Context(), offer, cfg)
	} else {
		answer, status, err = ss.startWHIP(offer, cfg)
	}
	if err != nil {
		ss.close("setup failed: " + err.Error())
		log.Warn("session refused", "reason", err.Error())
		http.Error(w, err.Error(), status)
		return
	}
	h := w.Header()
	for _, is := range cfg.ICEServers {
		for _, u := range is.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if is.Username != "" {
				l += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, is.Username, is.Credential)
			}
			h.Add("Link", l)
		}
	}
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", "/"+key+"/"+kind+"/"+id)
	h.Set("ETag", `"`+id[:16]+`"`)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
	log.Info("session started", "session", id[:8])
}

// readBody reads a request body of at most limit bytes; when it cannot,
// it answers the request (413 only when the body is too large) and
// returns false.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, fmt.Sprintf("the %s is larger than %d bytes", what, limit), http.StatusRequestEntityTooLarge)
	case err != nil:
		http.Error(w, fmt.Sprintf("reading the %s: %v", what, err), http.StatusBadRequest)
	default:
		return body, true
	}
	return nil, false
}

// newID returns 128 random bits in hex: the session resource URL is the
// only credential for PATCH and DELETE.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func (s *Server) remove(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
		s.wg.Done()
	}
}

func remoteAddr(r *http.Request) net.Addr {
	ap, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		return nil
	}
	return ap
}
