package agent

import (
	"os/exec"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/task"
)

type taskSpec = task.Spec

var execCommand = exec.Command

// allowLoopback lets the objects fetch from and push to loopback, which
// the outbound policy denies by default: for tests whose sources,
// destinations and callbacks are local servers.
func allowLoopback(c *config.Config) { c.Objects.FetchAllow = []string{"127.0.0.1/32"} }
