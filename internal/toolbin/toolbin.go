// Package toolbin finds the test tools pinned in tools/go.mod (the Lambda
// Runtime Interface Emulator, versitygw, …) for tests, building a missing
// one once. Tools live in $CSRFN_TOOLS_BIN (the Makefile exports the
// repository's bin/), else <repo>/bin. Test support only.
package toolbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env names the directory of the tools.
const Env = "CSRFN_TOOLS_BIN"

const modulePath = "github.com/csrfn/csrfn"

var (
	mu    sync.Mutex
	found = map[string]string{}
)

// Path returns the tool name, built from Go package pkg. A missing tool is
// built with `go build -C <repo>/tools -o <dir>/<name> <pkg>` under an
// exclusive lock on <dir>/.<name>.lock, so concurrent test binaries build it
// once, and renamed into place so nobody runs a half-written binary.
func Path(t testing.TB, name, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := found[name]; ok {
		return p
	}
	root, rootErr := RepoRoot()
	dir := os.Getenv(Env)
	if dir == "" {
		if rootErr != nil {
			t.Fatalf("toolbin: %s is not set and %v", Env, rootErr)
		}
		dir = filepath.Join(root, "bin")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("toolbin: %v", err)
	}
	path := filepath.Join(dir, name)
	if !IsExecutable(path) {
		if rootErr != nil {
			t.Fatalf("toolbin: %s is missing and cannot be built: %v", path, rootErr)
		}
		build(t, root, dir, path, name, pkg)
	}
	found[name] = path
	return path
}

func build(t testing.TB, root, dir, path, name, pkg string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("toolbin: %v", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "."+name+".lock"))
	if err != nil {
		t.Fatalf("toolbin: locking %s: %v", dir, err)
	}
	defer unlock()
	if IsExecutable(path) { // another process built it while we waited
		return
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.Remove(tmp)
	t.Logf("toolbin: building %s into %s (once)", pkg, path)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-C", filepath.Join(root, "tools"), "-o", tmp, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("toolbin: building %s: %v\n%s", name, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("toolbin: %v", err)
	}
}

// IsExecutable reports whether path is an executable regular file.
func IsExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// RepoRoot finds the csrfn module root (go.mod of github.com/csrfn/csrfn
// beside tools/go.mod), from the working directory and then from this
// source file's location.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the %s module root (with tools/go.mod) above %v", modulePath, starts)
}

func isRepoRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
			return true
		}
	}
	return false
}
