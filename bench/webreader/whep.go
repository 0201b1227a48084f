package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	pwebrtc "github.com/pion/webrtc/v4"
)

// whep makes pion peers as a browser's WHEP player would be: default
// codecs and interceptors (NACK, RTCP reports), host candidates on lo.
type whep struct {
	api   *pwebrtc.API
	audio bool
}

func newWHEP(audio bool) (*whep, error) {
	me := &pwebrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := pwebrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, fmt.Errorf("interceptors: %w", err)
	}
	var se pwebrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return &whep{api: pwebrtc.NewAPI(pwebrtc.WithMediaEngine(me), pwebrtc.WithInterceptorRegistry(ir), pwebrtc.WithSettingEngine(se)), audio: audio}, nil
}

// play opens one session and returns once it is connected; the tracks
// are read and counted until ctx ends.
func (w *whep) play(ctx context.Context, u string, r *reader) error {
	pc, err := w.api.NewPeerConnection(pwebrtc.Configuration{})
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	go func() { <-ctx.Done(); pc.Close() }()
	kinds := []pwebrtc.RTPCodecType{pwebrtc.RTPCodecTypeVideo}
	if w.audio {
		kinds = append(kinds, pwebrtc.RTPCodecTypeAudio)
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fmt.Errorf("transceiver: %w", err)
		}
	}
	pc.OnTrack(func(t *pwebrtc.TrackRemote, _ *pwebrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				if ctx.Err() == nil {
					r.fail(fmt.Errorf("track %s: %w", t.Kind(), err))
				}
				return
			}
			r.bytes.Add(uint64(n))
			r.units.Add(1)
		}
	})
	connected := make(chan struct{})
	failed := make(chan struct{})
	var connOnce, failOnce sync.Once
	pc.OnConnectionStateChange(func(s pwebrtc.PeerConnectionState) {
		switch s {
		case pwebrtc.PeerConnectionStateConnected:
			connOnce.Do(func() { close(connected) })
		case pwebrtc.PeerConnectionStateFailed, pwebrtc.PeerConnectionStateClosed:
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("connection %s", s))
			}
			failOnce.Do(func() { close(failed) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("offer: %w", err)
	}
	g := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("local description: %w", err)
	}
	<-g
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST: %s %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: string(b)}); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	select {
	case <-connected:
		return nil
	case <-failed:
		return fmt.Errorf("connection failed")
	case <-time.After(20 * time.Second):
		return fmt.Errorf("not connected in 20s (%s)", pc.ConnectionState())
	case <-ctx.Done():
		return ctx.Err()
	}
}
