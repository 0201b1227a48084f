package media_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/relaymesh/relaymesh/"

// TestDataPlaneImports: the data plane (media and every package below it)
// depends on none of the control plane or the roles (agent, config, api,
// cli, client, edge, center, gossip, flow, task, relay, lifecycle, ...):
// only on itself and the small shared packages listed in allowed. And
// media/unit, the leaf every protocol package shares, on nothing of
// relaymesh at all. It reads what `go list -deps` reads.
func TestDataPlaneImports(t *testing.T) {
	allowed := []string{"media", "auth", "events", "netutil", "internal"}
	cases := []struct {
		name, pkgs string
		allowed    []string
	}{
		{"media", module + "media/...", allowed},
		{"media/unit", module + "media/unit", []string{"media/unit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", c.pkgs).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", c.pkgs, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) == 0 {
				t.Fatalf("go list -deps %s listed nothing", c.pkgs)
			}
			for _, dep := range deps {
				rel, ours := strings.CutPrefix(dep, module)
				if !ours {
					continue
				}
				ok := false
				for _, a := range c.allowed {
					if rel == a || strings.HasPrefix(rel, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s depends on %s (go list -deps %s): the data plane must not import the control plane or the roles; allowed: %v",
						c.name, rel, c.pkgs, c.allowed)
				}
			}
		})
	}
}
