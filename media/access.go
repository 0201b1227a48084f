package media

import "net"

// Access is one request to publish or play a stream, as every listener
// (RTMP, HTTP-FLV, HLS, SRT) puts it to the node before it admits the
// client.
type Access struct {
	Protocol string   // "rtmp", "httpflv", "hls", "srt", "webrtc"
	Action   string   // "publish" or "play"
	Key      string   // the stream, app/name
	Token    string   // the signed-URL token the client sent ("": none)
	Remote   net.Addr // the client
}

// Authorizer decides whether a request may go ahead; its error says why
// not, and the listener refuses the client with it.
type Authorizer func(Access) error
