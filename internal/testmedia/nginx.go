package testmedia

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NginxModule is where Debian's libnginx-mod-rtmp installs the RTMP module.
const NginxModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// NginxConf is the nginx-rtmp configuration StartNginx uses when given
// none: one worker, application "live". @PORT@ and @PREFIX@ are filled in.
const NginxConf = `load_module ` + NginxModule + `;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/error.log info;
worker_processes 1;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:@PORT@;
    chunk_size 4096;
    application live {
      live on;
      record off;
    }
  }
}
`

// Nginx is an nginx-rtmp started by StartNginx.
type Nginx struct {
	Port int // RTMP on 127.0.0.1
	PID  int // the master
	Dir  string
}

// URL returns the rtmp:// base of the server.
func (n *Nginx) URL() string { return fmt.Sprintf("rtmp://127.0.0.1:%d", n.Port) }

// StartNginx runs nginx-rtmp in the foreground on a free loopback port
// with conf (NginxConf when empty; @PORT@ and @PREFIX@ are filled in) and
// waits until it listens. It skips the test when nginx or its RTMP module
// is missing. When the test ends nginx is stopped: SIGINT (fast shutdown:
// the master stops its worker), then SIGKILL to its process group for
// whatever is left, so no worker outlives the test owned by init.
func StartNginx(t testing.TB, conf string) *Nginx {
	t.Helper()
	Need(t, "nginx")
	if _, err := os.Stat(NginxModule); err != nil {
		t.Skipf("nginx RTMP module missing (apt-get install libnginx-mod-rtmp): %v", err)
	}
	if conf == "" {
		conf = NginxConf
	}
	n := &Nginx{Port: FreePort(t), Dir: t.TempDir()}
	for _, d := range []string{"logs", "client_body_temp"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf = strings.NewReplacer("@PORT@", fmt.Sprint(n.Port), "@PREFIX@", n.Dir).Replace(conf)
	cf := filepath.Join(n.Dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-p", n.Dir, "-c", cf, "-g", "daemon off;")
	var out LogBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// its own process group: a worker outlives a killed master (it was
	// left running, owned by init, after every test that used nginx)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nginx: %v", err)
	}
	n.PID = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		syscall.Kill(-n.PID, syscall.SIGKILL)
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(n.Dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), lastLines(string(b), 40))
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", n.Port)
	Eventually(t, 5*time.Second, "nginx to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return n
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
