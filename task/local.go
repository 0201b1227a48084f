package task

import (
	"net"
	"net/url"
	"strings"
)

// LocalIngest maps a destination URL that points at this node's own RTMP
// or SRT listener to the hub key it would publish. listenAddr returns the
// address the node listens on for a scheme ("rtmp" or "srt"; "" when
// none). Deps.Local is this, bound to the node's listeners.
func LocalIngest(dest string, listenAddr func(scheme string) string) (string, bool) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", false
	}
	var own string
	switch u.Scheme {
	case "rtmp", "srt":
		own = listenAddr(u.Scheme)
	default:
		return "", false
	}
	if own == "" {
		return "", false
	}
	_, ownPort, _ := net.SplitHostPort(own)
	host, port := u.Hostname(), u.Port()
	if port == "" && u.Scheme == "rtmp" {
		port = "1935"
	}
	if port != ownPort || !isLocalHost(host) {
		return "", false
	}
	if u.Scheme == "rtmp" {
		key := strings.Trim(u.Path, "/")
		return key, key != ""
	}
	sid := u.Query().Get("streamid")
	mode, key, ok := strings.Cut(sid, ":")
	if !ok || mode != "publish" {
		return "", false
	}
	return key, key != ""
}

// isLocalHost reports whether h names this machine.
func isLocalHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
