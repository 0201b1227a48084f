package control

import (
	"os"
	"strings"
)

// RuntimeDir is where the agent keeps what lives as long as it runs (the
// control socket, the record of its tc state): the first entry of
// $RUNTIME_DIRECTORY, which systemd sets from RuntimeDirectory=; "" when
// it is not set, and then the agent has neither.
func RuntimeDir() string {
	first, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":")
	return first
}
