package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNotifier(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(good, []byte("  0123456789abcdef-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url, secretFile string
		secret, err           string
	}{
		{"off", "", good, "", ""},
		{"unsigned", "http://127.0.0.1:1/hooks", "", "", ""},
		{"signed", "http://127.0.0.1:1/hooks", good, "0123456789abcdef-secret", ""},
		{"secret too short", "http://127.0.0.1:1/hooks", short, "", "webhooks.secret_file: " + short + " holds 5 bytes"},
		{"secret missing", "http://127.0.0.1:1/hooks", filepath.Join(dir, "none"), "", "webhooks.secret_file: open"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			cfg.Node.Name = "fra-1"
			cfg.Webhooks.URL, cfg.Webhooks.SecretFile, cfg.Webhooks.Events = c.url, c.secretFile, []string{"stream.published"}
			hc, err := cfg.Notifier()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Notifier: %v, want an error saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if hc.URL != c.url || hc.Node != "fra-1" || string(hc.Secret) != c.secret || len(hc.Events) != 1 {
				t.Errorf("Notifier = %+v, want URL %q, node fra-1, secret %q, the events", hc, c.url, c.secret)
			}
		})
	}
}
