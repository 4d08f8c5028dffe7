// Package keystore holds the embedded key store: one file per record in a
// local directory, created once and never overwritten. Cloud backends live
// outside core and follow the same contract (see keystore/storetest).
package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// MaxRecordSize bounds what Load reads; a record is a few KiB.
const MaxRecordSize = 1 << 20

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$`)

// CheckName refuses names that could escape the store or hide in it: a
// record name is one path segment that does not start with a dot.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("keystore: invalid record name %q", name)
	}
	return nil
}

// File stores each record as DIR/NAME (mode 0600, directory 0700). A record
// is written to an unnamed or temporary file, fsynced, then linked to its
// name, and the directory is fsynced: a crash leaves either the whole record
// or none, and link(2) fails if the name exists, which makes Create
// create-only without a lock.
type File struct {
	dir    string
	dirf   *os.File // kept open to fsync the directory
	spares *spares  // pre-opened unnamed files (Linux O_TMPFILE)

	// fault, when set by tests, is called before each step and fails it.
	fault func(step string) error
}

// tmpPrefix marks named temporary files (the fallback where O_TMPFILE is
// unavailable); List ignores them and OpenFile sweeps stale ones.
const tmpPrefix = ".tmp-"

// OpenFile opens (creating if needed) the store directory. An existing
// directory that group or others can access is refused.
func OpenFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("keystore: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("keystore: %s is not a directory", dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keystore: %s is accessible by group or others (mode %04o); run chmod 700 on it", dir, st.Mode().Perm())
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	s := &File{dir: dir, dirf: dirf}
	s.spares = newSpares(dir)
	s.sweep()
	return s, nil
}

// FromURL opens a file:// store URL: file:///abs/dir, file://./rel/dir or
// file:rel/dir.
func FromURL(u *url.URL) (*File, error) {
	dir := u.Path
	if u.Opaque != "" {
		dir = u.Opaque
	} else if u.Host != "" {
		dir = u.Host + u.Path // file://./x or file://dir/x: relative
	}
	return OpenFile(filepath.Clean(dir))
}

// Dir is the store's directory.
func (s *File) Dir() string { return s.dir }

// Close releases the directory handle and pre-opened files.
func (s *File) Close() error {
	s.spares.close()
	return s.dirf.Close()
}

func (s *File) step(name string) error {
	if s.fault != nil {
		return s.fault(name)
	}
	return nil
}

// Create writes a new record. It fails with an error wrapping fs.ErrExist if
// name exists; on any failure nothing is left behind.
func (s *File) Create(ctx context.Context, name string, data []byte) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dst := filepath.Join(s.dir, name)
	if f := s.spares.take(); f != nil {
		err := s.write(f, data)
		if err == nil {
			err = s.step("link")
		}
		if err == nil {
			err = linkUnnamed(f, dst)
		}
		f.Close()
		if err == nil {
			return s.linked(name, dst)
		}
		if !errors.Is(err, errNoUnnamed) {
			return s.wrap(name, err)
		}
		s.spares.disable() // e.g. no /proc: use named temporary files from now on
	}
	return s.createNamed(name, dst, data)
}

func (s *File) write(f *os.File, data []byte) error {
	if err := s.step("write"); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := s.step("sync"); err != nil {
		return err
	}
	return f.Sync()
}

func (s *File) createNamed(name, dst string, data []byte) error {
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*") // mode 0600
	if err != nil {
		return s.wrap(name, err)
	}
	defer os.Remove(f.Name())
	err = s.write(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.step("link")
	}
	if err == nil {
		err = os.Link(f.Name(), dst)
	}
	if err != nil {
		return s.wrap(name, err)
	}
	return s.linked(name, dst)
}

// linked finishes a Create whose record has been linked to dst: the
// directory is fsynced so the name is durable. If that fails the caller is
// told the record was not stored (it gets no CSR for it), so the name is
// removed again: a failed Create leaves nothing behind.
func (s *File) linked(name, dst string) error {
	if err := s.syncDir(); err != nil {
		os.Remove(dst)
		return s.wrap(name, err)
	}
	return nil
}

func (s *File) syncDir() error {
	if err := s.step("syncdir"); err != nil {
		return err
	}
	return s.dirf.Sync()
}

func (s *File) wrap(name string, err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("keystore: record %s: %w", name, fs.ErrExist)
	}
	return fmt.Errorf("keystore: create %s: %w", name, err)
}

// Load reads a record; a missing one gives an error wrapping fs.ErrNotExist.
func (s *File) Load(ctx context.Context, name string) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("keystore: record %s is larger than %d bytes", name, MaxRecordSize)
	}
	return b, nil
}

// List returns the names of all records, sorted.
func (s *File) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// sweep removes named temporary files a crashed process left behind. Only
// old ones: another live process may be writing a young one.
func (s *File) sweep() {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 10*time.Minute {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

// spares keeps a few unnamed files open ahead of need: creating a file is a
// large part of a durable write's latency, and an unnamed file that is never
// linked vanishes with the process, so no temporary file can be left behind.
type spares struct {
	dir string
	mu  sync.Mutex
	ch  chan *os.File
	off bool
}

const maxSpares = 4

func newSpares(dir string) *spares {
	sp := &spares{dir: dir, ch: make(chan *os.File, maxSpares)}
	if !unnamedSupported {
		sp.off = true
		return sp
	}
	sp.refill()
	return sp
}

// take returns a pre-opened file, or opens one now; nil when unnamed files
// are not available. It starts a refill in the background.
func (sp *spares) take() *os.File {
	sp.mu.Lock()
	off := sp.off
	sp.mu.Unlock()
	if off {
		return nil
	}
	select {
	case f := <-sp.ch:
		go sp.refill()
		return f
	default:
	}
	f, err := openUnnamed(sp.dir)
	if err != nil {
		// Only a filesystem without O_TMPFILE turns the fast path off for
		// good; a passing error (out of descriptors) fails this call alone.
		if unnamedUnsupported(err) {
			sp.disable()
		}
		return nil
	}
	go sp.refill()
	return f
}

func (sp *spares) refill() {
	f, err := openUnnamed(sp.dir)
	if err != nil {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.off {
		f.Close()
		return
	}
	select {
	case sp.ch <- f:
	default:
		f.Close()
	}
}

func (sp *spares) disable() {
	sp.mu.Lock()
	sp.off = true
	sp.mu.Unlock()
	sp.drain()
}

func (sp *spares) close() { sp.disable() }

func (sp *spares) drain() {
	for {
		select {
		case f := <-sp.ch:
			f.Close()
		default:
			return
		}
	}
}
