package netlab_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/test/netlab"
)

// How a cluster test uses the lab (compiled, not run: it needs root and a
// *testing.T).
func Example() {
	var t *testing.T // the test's own t
	netlab.RequireRoot(t)
	lab, err := netlab.New(t, netlab.Config{}) // builds test/impair; Close via t.Cleanup
	if err != nil {
		t.Fatal(err)
	}
	sites := map[string]*netlab.Host{}
	for _, name := range []string{"sin", "fra", "tyo"} {
		if sites[name], err = lab.AddHost(name); err != nil {
			t.Fatal(err)
		}
	}
	_ = lab.SetLink("sin", "fra", netlab.RTT(160*time.Millisecond, 0.01))
	_ = lab.SetLink("sin", "tyo", netlab.RTT(70*time.Millisecond, 0))
	_ = lab.SetLink("tyo", "fra", netlab.RTT(230*time.Millisecond, 0.02))

	ctx := context.Background()
	agent := sites["fra"].Command(ctx, "/path/to/relaymesh", "run", "-config", "fra.toml")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := sites["sin"].HTTPClient().Get(fmt.Sprintf("http://%s/v1/nodes", sites["fra"].AddrPort(8080)))
	if err == nil {
		resp.Body.Close()
	}
	_ = lab.Blackhole("fra", true) // fra silently disappears
	_ = lab.Blackhole("fra", false)
}
