// Package web is the node's small web page on the HTTP media listener:
// GET / lists the live streams, GET /APP/NAME/ plays one in the browser
// (WebRTC over WHEP, else LL-HLS; HTTP-FLV on request; see
// static/player.js). Its JavaScript
// is vendored or written here (no CDN, no build step).
package web

import (
	"embed"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/netutil"
)

//go:embed static/hls.min.js static/mpegts.js static/player.js
var static embed.FS

// StaticPrefix is where the page's scripts are served.
const StaticPrefix = "/_static/"

// Authorizer decides whether a client may play a stream (action "play").
type Authorizer func(action, key, query string, remote net.Addr) error

// Page serves the stream list, the player pages and their scripts.
type Page struct {
	hub       *media.Hub
	authorize Authorizer
}

// New returns the page for hub's streams. The list shows a client only
// the streams authorize lets it play (its address, the token in the
// page's query); nil shows every stream.
func New(hub *media.Hub, authorize Authorizer) *Page { return &Page{hub: hub, authorize: authorize} }

// Handles reports whether the page serves path p.
func Handles(p string) bool {
	return p == "/" || strings.HasSuffix(p, "/") || strings.HasPrefix(p, StaticPrefix)
}

type row struct {
	Key, Video, Audio, Res string
	FPS                    float64
	Kbps                   int64
	Readers                int
}

var (
	indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>relaymesh: live streams</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style></head>
<body><h1>Live streams</h1>
{{if .}}<table id="streams"><tr><th>stream</th><th>video</th><th>audio</th><th>resolution</th><th>fps</th><th>kbit/s</th><th>readers</th><th>links</th></tr>
{{range .}}<tr class="stream" data-key="{{.Key}}"><td><a href="/{{.Key}}/">{{.Key}}</a></td><td>{{.Video}}</td><td>{{.Audio}}</td><td>{{.Res}}</td><td>{{printf "%.1f" .FPS}}</td><td>{{.Kbps}}</td><td>{{.Readers}}</td>
<td><a href="/{{.Key}}/">play</a> <a href="/{{.Key}}/index.m3u8">LL-HLS</a> <a href="/{{.Key}}/plain.m3u8">HLS</a> <a href="/{{.Key}}.flv">FLV</a></td></tr>
{{end}}</table>{{else}}<p>No live streams (that this address and token may play).</p>{{end}}
</body></html>
`))
	playerTmpl = template.Must(template.New("player").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Key}}: relaymesh</title>
<style>body{font-family:sans-serif;margin:2em}video{width:100%;max-width:960px;max-height:60vh;background:#000}</style></head>
<body><h1>{{.Key}}</h1>
<video id="video" controls muted autoplay playsinline data-src="{{.Src}}" data-whep="{{.WHEP}}" data-flv="{{.FLV}}"></video>
<p id="status">starting</p>
<p><a href="/">all streams</a></p>
<script src="/_static/hls.min.js"></script>
<script src="/_static/mpegts.js"></script>
<script src="/_static/player.js"></script>
</body></html>
`))
)

// ServeHTTP serves GET /, GET /APP/NAME/ and the scripts.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD are served here", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, StaticPrefix):
		b, err := static.ReadFile("static/" + strings.TrimPrefix(r.URL.Path, StaticPrefix))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(b)
	case r.URL.Path == "/":
		var rows []row
		remote := netutil.RemoteAddr(r.RemoteAddr)
		for _, st := range p.hub.Streams() {
			if p.authorize != nil && p.authorize("play", st.Key(), r.URL.RawQuery, remote) != nil {
				continue
			}
			c, rt := st.Codecs(), st.Meter.Rates()
			rw := row{Key: st.Key(), Video: c.Video, Audio: c.Audio, FPS: rt.FPS,
				Kbps: (rt.VideoBitrate + rt.AudioBitrate) / 1000, Readers: st.ReaderCount()}
			if c.Width > 0 {
				rw.Res = strconv.Itoa(c.Width) + "x" + strconv.Itoa(c.Height)
			}
			rows = append(rows, rw)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		indexTmpl.Execute(w, rows)
	default:
		key := strings.Trim(r.URL.Path, "/")
		if err := media.CheckKey(key); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		src, whep, flv := "/"+key+"/index.m3u8", "/"+key+"/whep", "/"+key+".flv"
		if q := r.URL.RawQuery; q != "" { // the signed play token
			src, whep, flv = src+"?"+q, whep+"?"+q, flv+"?"+q
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		playerTmpl.Execute(w, struct{ Key, Src, WHEP, FLV string }{key, src, whep, flv})
	}
}
