package netutil

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, inUse := net.Listen("tcp", ln.Addr().String())
	other := errors.New("something else")
	cases := []struct {
		name string
		err  error
		want string // "" = nil
	}{
		{"bound", nil, ""},
		{"address in use", inUse, `rtmp.listen "a:1": address already in use: stop what listens there`},
		{"no such address", &net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.EADDRNOTAVAIL)}, "no such address on this host"},
		{"privileged port", &net.OpError{Op: "listen", Err: os.NewSyscallError("bind", syscall.EACCES)}, "needs CAP_NET_BIND_SERVICE"},
		{"other", other, `rtmp.listen "a:1": something else`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ListenError("rtmp.listen", "a:1", c.err)
			switch {
			case c.want == "" && got != nil:
				t.Errorf("ListenError = %v, want nil", got)
			case c.want != "" && (got == nil || !strings.Contains(got.Error(), c.want)):
				t.Errorf("ListenError = %v, want it saying %q", got, c.want)
			}
		})
	}
	if got := ListenError("k", "a", other); !errors.Is(got, other) {
		t.Errorf("ListenError does not wrap the cause: %v", got)
	}
}
