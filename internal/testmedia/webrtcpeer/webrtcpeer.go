// Package webrtcpeer is a pion WebRTC peer for tests: a WHEP player or
// WHIP publisher as a browser or OBS would be.
package webrtcpeer

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	pwebrtc "github.com/pion/webrtc/v4"
)

// New is a pion client as a WHEP player or WHIP publisher would be;
// each opt may change its settings.
func New(t *testing.T, opts ...func(*pwebrtc.SettingEngine)) *pwebrtc.PeerConnection {
	t.Helper()
	return NewWith(t, nil, opts...)
}

// NewWith is New with an interceptor added after pion's defaults (nil:
// none), as a test's hook on the packets the peer sends.
func NewWith(t *testing.T, ic interceptor.Factory, opts ...func(*pwebrtc.SettingEngine)) *pwebrtc.PeerConnection {
	t.Helper()
	me := &pwebrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := pwebrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	if ic != nil {
		ir.Add(ic)
	}
	var se pwebrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	for _, o := range opts {
		o(&se)
	}
	api := pwebrtc.NewAPI(pwebrtc.WithMediaEngine(me), pwebrtc.WithInterceptorRegistry(ir), pwebrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(pwebrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// Offer returns pc's complete offer (candidates gathered).
func Offer(t *testing.T, pc *pwebrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g:
	case <-time.After(20 * time.Second):
		t.Fatal("ICE gathering not complete within 20s")
	}
	return pc.LocalDescription().SDP
}

// Post sends an SDP offer and returns the status, body and Location.
func Post(t *testing.T, url, sdp string, hdr ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(sdp))
	req.Header.Set("Content-Type", "application/sdp")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// Connect runs the offer/answer exchange and waits for the connection.
func Connect(t *testing.T, pc *pwebrtc.PeerConnection, url string, hdr ...string) string {
	t.Helper()
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s pwebrtc.PeerConnectionState) {
		if s == pwebrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	status, body, loc := Post(t, url, Offer(t, pc), hdr...)
	if status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", url, status, body)
	}
	if loc == "" {
		t.Fatal("no Location in the answer")
	}
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatalf("answer: %v\n%s", err, body)
	}
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatalf("not connected within 20s (state %s)", pc.ConnectionState())
	}
	return loc
}

// Do sends one request and returns its status and body.
func Do(t *testing.T, method, url, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
