package control

import "testing"

// TestRuntimeDir: systemd may list several runtime directories; the
// agent uses the first.
func TestRuntimeDir(t *testing.T) {
	for _, tt := range []struct{ env, want string }{
		{"", ""},
		{"/run/relaymesh", "/run/relaymesh"},
		{"/run/relaymesh:/run/other", "/run/relaymesh"},
	} {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("RUNTIME_DIRECTORY", tt.env)
			if got := RuntimeDir(); got != tt.want {
				t.Errorf("RuntimeDir() = %q with RUNTIME_DIRECTORY=%q, want %q", got, tt.env, tt.want)
			}
		})
	}
}
