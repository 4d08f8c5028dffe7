package keystore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const unnamedSupported = true

// errNoUnnamed says the unnamed-file path is unusable here (old kernel,
// filesystem without O_TMPFILE, no /proc); the caller falls back.
var errNoUnnamed = errors.New("keystore: unnamed files unavailable")

func openUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// linkUnnamed gives the unnamed file f the name dst. linkat through
// /proc/self/fd needs no privilege (AT_EMPTY_PATH would need
// CAP_DAC_READ_SEARCH) and fails with EEXIST if dst exists.
func linkUnnamed(f *os.File, dst string) error {
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return &os.LinkError{Op: "link", Old: src, New: dst, Err: err}
	case errors.Is(err, unix.ENOENT) && !procMounted():
		return errNoUnnamed
	}
	return &os.LinkError{Op: "link", Old: src, New: dst, Err: err}
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
}

// unnamedUnsupported reports whether open(O_TMPFILE) failed because the
// kernel or filesystem lacks it, rather than for a passing reason.
func unnamedUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL)
}
