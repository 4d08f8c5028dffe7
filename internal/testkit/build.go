package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// GoBuild is the function of the package under test built as a static
// binary, once per test binary, for the end-to-end tests that run it under
// an emulator. Call Remove from TestMain when the tests are done.
type GoBuild struct {
	Name string // the binary's file name
	Tags string // build tags, comma-separated; "" for none

	once sync.Once
	path string
	err  error
}

// Path builds the package in the working directory on first use (with
// CGO_ENABLED=0, -trimpath and Tags) and returns the binary's path.
func (b *GoBuild) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "csrfn-"+b.Name+"-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.Name)
		cmd := exec.Command("go", "build", "-tags", b.Tags, "-trimpath", "-o", b.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes the binary, if it was built.
func (b *GoBuild) Remove() {
	if b.path != "" {
		os.RemoveAll(filepath.Dir(b.path))
	}
}

// TestMain runs the tests, removes the binary and exits with the tests'
// status: the whole of a package's TestMain.
func (b *GoBuild) TestMain(m *testing.M) {
	code := m.Run()
	b.Remove()
	os.Exit(code)
}
