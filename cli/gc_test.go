package cli

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestSetGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if v, ok := os.LookupEnv("GOGC"); ok {
		defer os.Setenv("GOGC", v)
	} else {
		defer os.Unsetenv("GOGC")
	}
	os.Unsetenv("GOGC")
	if p := setGCPercent(); p != defaultGCPercent || debug.SetGCPercent(defaultGCPercent) != defaultGCPercent {
		t.Errorf("without GOGC: %d, want %d", p, defaultGCPercent)
	}
	os.Setenv("GOGC", "80")
	debug.SetGCPercent(80) // what the runtime read from GOGC at start
	if p := setGCPercent(); p != 80 {
		t.Errorf("with GOGC=80: %d, want 80 kept", p)
	}
}
