package agent

import (
	"net/http"

	"github.com/relaymesh/relaymesh/media/hls"
	"github.com/relaymesh/relaymesh/media/webrtc"
	"github.com/relaymesh/relaymesh/web"
)

// httpRoutes serves the HTTP media listener's paths other than
// /APP/NAME.flv, dispatched on the last path element: HLS files, then the
// web page (/, /APP/NAME/ and its scripts), and WebRTC (/APP/NAME/whep,
// /APP/NAME/whip and their session resources).
func (a *Agent) httpRoutes() http.Handler {
	page := web.New(a.hub, a.authorizer("hls")) // the page plays over HLS
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case a.webrtc != nil && webrtc.Handles(p):
			a.webrtc.ServeHTTP(w, r)
		case a.hls != nil && hls.Handles(p):
			a.hls.ServeHTTP(w, r)
		case a.config().HLS.Page && web.Handles(p):
			page.ServeHTTP(w, r)
		default:
			http.Error(w, "not found: live streams are at /APP/NAME.flv and /APP/NAME/index.m3u8", http.StatusNotFound)
		}
	})
}
