package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMasksURLSecrets: `relaymesh check` refuses a [[task]] whose
// callback has no host, or does not parse, quoting the URL with its
// password and token masked.
func TestCheckMasksURLSecrets(t *testing.T) {
	const secret = "hunter2-secret"
	for _, c := range []struct{ name, url, want string }{
		{"password, no host", "https://admin:" + secret + "@/hook", "has no host"},
		{"token, no host", "https:///hook?token=" + secret, "has no host"},
		{"token, not a URL", "https://a b/hook?token=" + secret, "is not a URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "task.toml")
			conf := "[[task]]\nid = \"t1\"\nurl = \"rtmp://192.0.2.1/live/in\"\ndestination = \"rtmp://192.0.2.1/live/out\"\ncallback = \"" + c.url + "\"\n"
			if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := runCLI("check", "-c", f)
			if code != 1 || !strings.Contains(errOut, c.want) {
				t.Fatalf("check: exit %d, want 1 saying %q\nstdout: %s\nstderr: %s", code, c.want, out, errOut)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("check quotes the secret:\n%s%s", out, errOut)
			}
		})
	}
}
