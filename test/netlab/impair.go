package netlab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/relaymesh/relaymesh/test/impair/control"
)

// ImpairPackage is the import path go build is given when no prebuilt
// impair binary is named.
const ImpairPackage = "github.com/relaymesh/relaymesh/test/impair"

// EnvImpair names an environment variable that may hold the path of a
// prebuilt impair binary (used when Config.ImpairPath is empty).
const EnvImpair = "RELAYMESH_IMPAIR"

// buildImpair builds the impair tool into dir and returns its path.
func buildImpair(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "impair")
	cmd := exec.Command(goBin, "build", "-o", out, ImpairPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (or set %s to a prebuilt binary): %w: %s", ImpairPackage, EnvImpair, err, b)
	}
	return out, nil
}

// impairProc is the running impair tool of a lab, driven over its stdin.
type impairProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan control.Reply
	done    chan struct{} // closed when the process has been waited for
	waitErr error

	mu     sync.Mutex // serialises requests
	nextID uint64
}

const impairTimeout = 10 * time.Second

// realtime returns the command prefix that runs a command under
// SCHED_FIFO at impairPriority, or nil when chrt is missing or the
// policy is refused here (no CAP_SYS_NICE, no real-time budget).
var realtime = sync.OnceValue(func() []string {
	chrt, err := exec.LookPath("chrt")
	if err != nil || os.Getenv(EnvImpairRT) == "0" {
		return nil
	}
	rt := []string{chrt, "--fifo", fmt.Sprint(impairPriority)}
	if exec.Command(rt[0], append(rt[1:], "true")...).Run() != nil {
		return nil
	}
	return rt
})

// EnvImpairRT set to 0 runs the tool under the normal policy (to compare
// its Late counter with and without the real-time one).
const EnvImpairRT = "RELAYMESH_IMPAIR_RT"

// impairPriority is the tool's SCHED_FIFO priority: above every normal
// process, below the kernel's own real-time threads (50 and up).
const impairPriority = 10

// startImpair runs bin in namespace ns on NFQUEUE queue 0 and waits until
// the queue is bound. Its log goes to logPath.
func startImpair(bin, ns, logPath string, seed uint64) (*impairProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"ip", "netns", "exec", ns, bin, "-queue", "0", "-stdin", "-seed", fmt.Sprint(seed)}
	// The tool stands for the wire, which no CPU load slows down: it
	// runs under a real-time policy (every thread inherits it) so that
	// the hosts' load does not add its scheduling delay to the
	// configured one. Without chrt it runs as is; its Late counter shows
	// what that costs.
	if rt := realtime(); rt != nil {
		args = append(rt, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start impair: %w", err)
	}
	p := &impairProc{cmd: cmd, stdin: stdin, replies: make(chan control.Reply, 16), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r control.Reply
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue
			}
			select {
			case p.replies <- r:
			default: // only after timed-out requests; never block the tool
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(p.replies)
		// Wait only once stdout is drained: Wait closes the pipe.
		p.waitErr = cmd.Wait()
		logf.Close()
	}()
	select {
	case r, ok := <-p.replies:
		if ok && r.Ready {
			return p, nil
		}
	case <-time.After(impairTimeout):
	}
	p.stop()
	b, _ := os.ReadFile(logPath)
	return nil, fmt.Errorf("impair in %s did not become ready; its log: %s", ns, b)
}

var errImpairGone = errors.New("impair tool exited; see its log")

// request sends one request and waits for its reply.
func (p *impairProc) request(op string, cfg *control.Config) (control.Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	req := control.Request{ID: p.nextID, Op: op, Config: cfg}
	b, err := json.Marshal(req)
	if err != nil {
		return control.Stats{}, err
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		return control.Stats{}, fmt.Errorf("impair %s: %w (%w)", op, errImpairGone, err)
	}
	timeout := time.NewTimer(impairTimeout)
	defer timeout.Stop()
	for {
		select {
		case r, ok := <-p.replies:
			if !ok {
				return control.Stats{}, fmt.Errorf("impair %s: %w", op, errImpairGone)
			}
			if r.ID != req.ID {
				continue // a late reply to a request that timed out
			}
			if r.Error != "" {
				return r.Stats, fmt.Errorf("impair %s: %s", op, r.Error)
			}
			return r.Stats, nil
		case <-timeout.C:
			return control.Stats{}, fmt.Errorf("impair %s: no reply within %v", op, impairTimeout)
		}
	}
}

// stop closes stdin, which makes the tool let its held packets go and
// exit, and kills it by PID if it does not.
func (p *impairProc) stop() error {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}
