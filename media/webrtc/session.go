package webrtc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	pwebrtc "github.com/pion/webrtc/v4"
)

// session is one WHEP reader or WHIP publisher: a peer connection and
// the goroutines that move its media. It ends on DELETE, on ICE or DTLS
// failure, when it does not connect within the connect timeout, or with
// its stream.
type session struct {
	srv    *Server
	id     string
	key    string
	kind   string // "whep" or "whip"
	remote string
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	pc     *pwebrtc.PeerConnection

	connected chan struct{}
	connOnce  sync.Once
	patches   atomic.Int32
	closeOnce sync.Once
	// cleanups run once at close, last registered first; one registered
	// after close runs at once (a setup racing Server.Close leaks nothing).
	mu       sync.Mutex
	closed   bool
	cleanups []func()
}

// newPC builds the peer connection and ties its state to the session.
func (ss *session) newPC(cfg *Config) error {
	var servers []pwebrtc.ICEServer
	for _, is := range cfg.ICEServers {
		servers = append(servers, pwebrtc.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	pc, err := ss.srv.api.NewPeerConnection(pwebrtc.Configuration{ICEServers: servers})
	if err != nil {
		return fmt.Errorf("peer connection: %w", err)
	}
	ss.pc = pc
	ss.onClose(func() { pc.Close() })
	ss.connected = make(chan struct{})
	pc.OnConnectionStateChange(func(st pwebrtc.PeerConnectionState) {
		switch st {
		case pwebrtc.PeerConnectionStateConnected:
			ss.connOnce.Do(func() { close(ss.connected) })
			ss.log.Info("connected")
		case pwebrtc.PeerConnectionStateFailed, pwebrtc.PeerConnectionStateClosed:
			go ss.close("peer connection " + st.String())
		}
	})
	// a session that never connects is dropped: a flood of offers costs
	// at most ConnectTimeout per session slot
	go func() {
		t := time.NewTimer(cfg.ConnectTimeout)
		defer t.Stop()
		select {
		case <-ss.connected:
		case <-ss.ctx.Done():
		case <-t.C:
			ss.close(fmt.Sprintf("not connected within %s", cfg.ConnectTimeout))
		}
	}()
	return nil
}

// answer applies the offer and returns the complete answer (all host
// candidates gathered: they are known at once with the UDP mux).
func (ss *session) answer(ctx context.Context, offer string) (string, int, error) {
	if err := ss.pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("the offer cannot be applied: %w", err)
	}
	ans, err := ss.pc.CreateAnswer(nil)
	if err != nil {
		return "", http.StatusBadRequest, fmt.Errorf("no answer to the offer: %w", err)
	}
	gathered := pwebrtc.GatheringCompletePromise(ss.pc)
	if err := ss.pc.SetLocalDescription(ans); err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("set answer: %w", err)
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C: // answer with what is gathered; the rest trickles nowhere
	case <-ctx.Done():
		return "", http.StatusRequestTimeout, ctx.Err()
	}
	return ss.pc.LocalDescription().SDP, 0, nil
}

func (ss *session) onClose(f func()) {
	ss.mu.Lock()
	if !ss.closed {
		ss.cleanups = append(ss.cleanups, f)
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	f()
}

// close ends the session. Idempotent; safe from any goroutine.
func (ss *session) close(reason string) {
	ss.closeOnce.Do(func() {
		ss.cancel()
		ss.mu.Lock()
		ss.closed = true
		cl := ss.cleanups
		ss.mu.Unlock()
		for i := len(cl) - 1; i >= 0; i-- {
			cl[i]()
		}
		ss.srv.remove(ss)
		ss.log.Info("session ended", "reason", reason)
	})
}

// patch takes trickled candidates (application/trickle-ice-sdpfrag). An
// ICE restart is not offered: a fragment with new credentials is refused.
func (ss *session) patch(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) != "application/trickle-ice-sdpfrag" {
		http.Error(w, "PATCH takes Content-Type: application/trickle-ice-sdpfrag", http.StatusUnsupportedMediaType)
		return
	}
	if n := ss.patches.Add(1); n > maxPatches {
		http.Error(w, fmt.Sprintf("too many PATCH requests on this session (limit %d)", maxPatches), http.StatusTooManyRequests)
		return
	}
	body, ok := readBody(w, r, maxPatchBytes, "fragment")
	if !ok {
		return
	}
	remote := ss.pc.RemoteDescription()
	var ufrag string
	if remote != nil {
		ufrag = iceUfrag(remote.SDP)
	}
	var cands []string
	mid := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			if u := strings.TrimPrefix(line, "a=ice-ufrag:"); ufrag != "" && u != ufrag {
				http.Error(w, "ICE restart is not supported: start a new session", http.StatusUnprocessableEntity)
				return
			}
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			cands = append(cands, strings.TrimPrefix(line, "a="))
		}
	}
	if len(cands) > maxCandidatesPatch {
		http.Error(w, fmt.Sprintf("too many candidates in one fragment (limit %d)", maxCandidatesPatch), http.StatusRequestEntityTooLarge)
		return
	}
	for _, c := range cands {
		init := pwebrtc.ICECandidateInit{Candidate: c}
		if mid != "" {
			m := mid
			init.SDPMid = &m
		}
		if err := ss.pc.AddICECandidate(init); err != nil {
			http.Error(w, "bad candidate: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func iceUfrag(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			return u
		}
	}
	return ""
}

// errNoCodec is an offer without a codec relaymesh can carry.
var errNoCodec = errors.New("the offer has no H264 or H265 video")

// checkOffer parses the offer and refuses one relaymesh cannot serve
// before any session state is made.
func checkOffer(body []byte, kind string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(body)); err != nil {
		return "", fmt.Errorf("malformed SDP offer: %w", err)
	}
	video := false
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			_, enc, _ := strings.Cut(a.Value, " ")
			name, _, _ := strings.Cut(strings.ToUpper(enc), "/")
			if name == "H264" || (name == "H265" && kind == "whep") {
				video = true
			}
		}
	}
	if !video {
		if kind == "whip" {
			return "", errors.New("the offer has no H264 video (WHIP takes H264 and Opus)")
		}
		return "", errNoCodec
	}
	return string(body), nil
}

// offers reports whether the offer lists codec in an rtpmap.
func offers(offer, codec string) bool {
	return strings.Contains(strings.ToUpper(offer), " "+codec+"/")
}
