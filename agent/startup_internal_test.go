package agent

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestFailedNewReleasesEverything: when New fails late (here on an API
// address in use, after the media listeners and the control socket are
// bound), it returns the error, Close is safe on what it returned, and
// every socket it had bound is free again.
func TestFailedNewReleasesEverything(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", rt)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testAgentConfig(t)
	cfg.RTMP.Listen = fmt.Sprintf("127.0.0.1:%d", testmedia.FreePort(t))
	cfg.HTTP.Listen = fmt.Sprintf("127.0.0.1:%d", testmedia.FreePort(t))
	cfg.API.Listen = busy.Addr().String()
	a, err := New(cfg, "", &testmedia.LogBuffer{})
	if err == nil || !strings.Contains(err.Error(), "api.listen") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New = %v, want api.listen: address already in use", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close after a failed New: %v", err)
	}
	for key, addr := range map[string]string{"rtmp.listen": cfg.RTMP.Listen, "http.listen": cfg.HTTP.Listen} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s %s still bound after the failed New: %v", key, addr, err)
			continue
		}
		ln.Close()
	}
	if _, err := os.Stat(filepath.Join(rt, client.ControlSocket)); !os.IsNotExist(err) {
		t.Errorf("control socket left after the failed New (%v)", err)
	}
}
