package agent

import (
	"os/exec"

	"github.com/relaymesh/relaymesh/task"
)

type taskSpec = task.Spec

var execCommand = exec.Command
