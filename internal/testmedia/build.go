package testmedia

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// RelaymeshPackage is the main package tests build to run real agents.
const RelaymeshPackage = "github.com/relaymesh/relaymesh/cmd/relaymesh"

// BuildBinary builds a main package into a new temporary directory and
// returns the binary's path and a cleanup that removes the directory.
func BuildBinary(pkg string) (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "relaymesh-bin-")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

var built struct {
	sync.Once
	path string
	err  error
}

// Binary builds relaymesh (RelaymeshPackage) once per test binary run and
// returns its path; the build stays in its temp dir (a few MB).
func Binary(t testing.TB) string {
	t.Helper()
	built.Do(func() { built.path, _, built.err = BuildBinary(RelaymeshPackage) })
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}
