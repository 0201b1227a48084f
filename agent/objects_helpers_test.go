package agent

import (
	"bytes"
	"os/exec"
	"sync"

	"github.com/relaymesh/relaymesh/task"
)

type taskSpec = task.Spec

var execCommand = exec.Command

// syncBuf is a log sink tests read while the agent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
