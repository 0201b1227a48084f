package netutil

import "net"

// RemoteAddr parses an HTTP request's RemoteAddr ("ip:port") for the
// allowlists; nil when it is not one.
func RemoteAddr(hostport string) net.Addr {
	ap, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil
	}
	return ap
}
