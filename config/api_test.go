package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIAccessConfig: the access keys are validated naming the key.
func TestAPIAccessConfig(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string
	}{
		{"read token needs the API token", "[api]\nread_token_file = \"/etc/r\"\n",
			[]string{`c.toml:3: api.read_token_file: needs token_file: a read-only token is only useful when the other routes need the full one`}},
		{"read token path", "[api]\ntoken_file = \"/etc/t\"\nread_token_file = \"r.token\"\n",
			[]string{`c.toml:4: api.read_token_file: "r.token" is not an absolute path`}},
		{"locate token path", "[auth]\nlocate_token_file = \"l.token\"\n",
			[]string{`c.toml:3: auth.locate_token_file: "l.token" is not an absolute path`}},
		{"locate_signs is a bool", "[auth]\nlocate_signs = \"yes\"\n", nil},
		{"good", "[api]\nlisten = \"0.0.0.0:9997\"\ntoken_file = \"/etc/t\"\nread_token_file = \"/etc/r\"\nmetrics_open = true\n[auth]\nlocate_signs = false\n", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "locate_signs is a bool" {
				path := filepath.Join(t.TempDir(), "c.toml")
				os.WriteFile(path, []byte("version = 1\n"+c.toml), 0o644)
				if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "locate_signs") {
					t.Fatalf("Load: %v, want an error naming auth.locate_signs", err)
				}
				return
			}
			checkLoadProblems(t, "version = 1\n"+c.toml, c.want)
		})
	}
}

// TestTokensDiffer: CheckFiles refuses one token used for two roles.
func TestTokensDiffer(t *testing.T) {
	dir := t.TempDir()
	same := filepath.Join(dir, "a")
	os.WriteFile(same, []byte("the-same-token-0123456789"), 0o600)
	other := filepath.Join(dir, "b")
	os.WriteFile(other, []byte("the-same-token-0123456789\n"), 0o600)
	c := Default()
	c.API.TokenFile, c.API.ReadTokenFile = same, other
	err := c.CheckFiles()
	if err == nil || !strings.Contains(err.Error(), "api.read_token_file: holds the same token as api.token_file") {
		t.Fatalf("CheckFiles: %v, want the read token refused as a copy of the API token", err)
	}
}
