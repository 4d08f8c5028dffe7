package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// storeDir returns a fresh, not yet existing store directory: t.TempDir
// itself is 0755, which OpenFile rightly refuses.
func storeDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "store")
}

func openStore(t *testing.T) *File {
	t.Helper()
	s, err := OpenFile(storeDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// entries lists every name in dir, hidden ones included.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

const rec = "0123456789abcdef0123456789abcdef.json"

// paths runs f once on the unnamed-file path and once on the named
// temporary-file fallback.
func paths(t *testing.T, f func(t *testing.T, s *File)) {
	t.Run("unnamed", func(t *testing.T) {
		t.Parallel()
		s := openStore(t)
		if unnamedSupported && s.spares.off {
			t.Fatal("unnamed files unavailable on this Linux system")
		}
		f(t, s)
	})
	t.Run("named", func(t *testing.T) {
		t.Parallel()
		s := openStore(t)
		s.spares.disable()
		f(t, s)
	})
}

func TestCreateLoad(t *testing.T) {
	t.Parallel()
	paths(t, func(t *testing.T, s *File) {
		ctx := context.Background()
		data := []byte(`{"Version":1}`)
		if err := s.Create(ctx, rec, data); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, rec)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Load = %q, %v", got, err)
		}
		st, err := os.Stat(filepath.Join(s.Dir(), rec))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("record mode %04o, want 0600", st.Mode().Perm())
		}
		dst, _ := os.Stat(s.Dir())
		if dst.Mode().Perm() != 0o700 {
			t.Errorf("directory mode %04o, want 0700", dst.Mode().Perm())
		}
		if got := entries(t, s.Dir()); len(got) != 1 || got[0] != rec {
			t.Errorf("directory holds %q, want only the record", got)
		}
		names, err := s.List(ctx)
		if err != nil || len(names) != 1 || names[0] != rec {
			t.Errorf("List = %q, %v", names, err)
		}
	})
}

func TestCreateOnlyOnce(t *testing.T) {
	t.Parallel()
	paths(t, func(t *testing.T, s *File) {
		ctx := context.Background()
		first := []byte("first")
		if err := s.Create(ctx, rec, first); err != nil {
			t.Fatal(err)
		}
		err := s.Create(ctx, rec, []byte("second, longer content"))
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second Create: %v, want fs.ErrExist", err)
		}
		got, err := s.Load(ctx, rec)
		if err != nil || !bytes.Equal(got, first) {
			t.Errorf("after a second Create, Load = %q, %v; want the first content", got, err)
		}
		if got := entries(t, s.Dir()); len(got) != 1 {
			t.Errorf("directory holds %q, want only the record", got)
		}
	})
}

func TestCreateConcurrentOneWinner(t *testing.T) {
	t.Parallel()
	paths(t, func(t *testing.T, s *File) {
		ctx := context.Background()
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.Create(ctx, rec, []byte(fmt.Sprintf("writer %02d", i)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("writers %d and %d both won", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, fs.ErrExist):
				t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no writer won")
		}
		got, err := s.Load(ctx, rec)
		if err != nil || string(got) != fmt.Sprintf("writer %02d", winner) {
			t.Errorf("Load = %q, %v; want the winner's content", got, err)
		}
		if got := entries(t, s.Dir()); len(got) != 1 {
			t.Errorf("directory holds %q, want only the record", got)
		}
	})
}

func TestCreateFaultsLeaveNothing(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"write", "sync", "link", "syncdir"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			paths(t, func(t *testing.T, s *File) {
				ctx := context.Background()
				injected := errors.New("injected " + step + " failure")
				var seen []string
				s.fault = func(got string) error {
					seen = append(seen, got)
					if got == step {
						return injected
					}
					return nil
				}
				err := s.Create(ctx, rec, []byte("record"))
				if !errors.Is(err, injected) {
					t.Fatalf("Create: %v, want the injected failure", err)
				}
				if seen[len(seen)-1] != step {
					t.Errorf("steps %q: the fault did not stop at %s", seen, step)
				}
				if got := entries(t, s.Dir()); len(got) != 0 {
					t.Errorf("after a failed %s the directory holds %q", step, got)
				}
				if _, err := s.Load(ctx, rec); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Load after a failed Create: %v, want fs.ErrNotExist", err)
				}
				// Nothing left behind blocks a retry.
				s.fault = nil
				if err := s.Create(ctx, rec, []byte("retry")); err != nil {
					t.Errorf("retry: %v", err)
				}
			})
		})
	}
}

// TestCreateStepsInOrder also shows which path ran: just before the link,
// the named fallback has a temporary file in the directory and the unnamed
// path has none.
func TestCreateStepsInOrder(t *testing.T) {
	t.Parallel()
	paths(t, func(t *testing.T, s *File) {
		var seen, atLink []string
		s.fault = func(step string) error {
			seen = append(seen, step)
			if step == "link" {
				atLink = entries(t, s.Dir())
			}
			return nil
		}
		if err := s.Create(context.Background(), rec, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(seen, ","); got != "write,sync,link,syncdir" {
			t.Errorf("steps %s, want write,sync,link,syncdir", got)
		}
		named := strings.HasSuffix(t.Name(), "/named")
		switch {
		case named && (len(atLink) != 1 || !strings.HasPrefix(atLink[0], tmpPrefix)):
			t.Errorf("named path: directory before the link holds %q, want one %s file", atLink, tmpPrefix)
		case !named && len(atLink) != 0:
			t.Errorf("unnamed path: directory before the link holds %q, want nothing", atLink)
		}
		if got := entries(t, s.Dir()); len(got) != 1 || got[0] != rec {
			t.Errorf("directory after Create holds %q", got)
		}
	})
}

func TestCreateNamedDirect(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	dst := filepath.Join(s.Dir(), rec)
	if err := s.createNamed(rec, dst, []byte("named")); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, s.Dir()); len(got) != 1 || got[0] != rec {
		t.Errorf("directory holds %q, want only the record (no temporary file)", got)
	}
	st, _ := os.Stat(dst)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	if err := s.createNamed(rec, dst, []byte("again")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second createNamed: %v, want fs.ErrExist", err)
	}
	if got, _ := s.Load(ctx, rec); string(got) != "named" {
		t.Errorf("content %q, want the first", got)
	}
	if got := entries(t, s.Dir()); len(got) != 1 {
		t.Errorf("directory holds %q after a refused create", got)
	}
}

func TestLoadMissing(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	_, err := s.Load(context.Background(), rec)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing record: %v, want fs.ErrNotExist", err)
	}
}

func TestLoadTooLarge(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	if err := s.Create(context.Background(), rec, make([]byte, MaxRecordSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background(), rec); err == nil {
		t.Error("Load read a record over MaxRecordSize")
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{rec, "a", "A-b_c.1", "x.json", strings.Repeat("a", 200)} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "../x", "..", ".", ".hidden", ".tmp-123", "a/b", "/abs", `a\b`, "a b", "a\x00b", "ü", strings.Repeat("a", 201)} {
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName(%q) accepted it", name)
		}
	}
}

func TestBadNamesTouchNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	s, err := OpenFile(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, name := range []string{"../escape", ".hidden", "a/b"} {
		if err := s.Create(ctx, name, []byte("x")); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
		if _, err := s.Load(ctx, name); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q): %v, want a name error", name, err)
		}
	}
	if got := entries(t, root); len(got) != 1 || got[0] != "store" {
		t.Errorf("the parent holds %q", got)
	}
	if got := entries(t, s.Dir()); len(got) != 0 {
		t.Errorf("the store holds %q", got)
	}
}

func TestOpenFileModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o750, 0o705, 0o770, 0o755, 0o701} {
		dir := filepath.Join(t.TempDir(), "store")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if s, err := OpenFile(dir); err == nil {
			s.Close()
			t.Errorf("OpenFile accepted a directory of mode %04o", mode)
		}
	}
	// An existing 0700 directory is fine; a new one is made 0700.
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("new directory mode %04o", st.Mode().Perm())
	}
	if s, err := OpenFile(dir); err != nil {
		t.Errorf("reopen: %v", err)
	} else {
		s.Close()
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := OpenFile(file); err == nil {
		t.Error("OpenFile accepted a regular file")
	}
	if _, err := OpenFile(""); err == nil {
		t.Error("OpenFile accepted an empty path")
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Create(ctx, rec, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: %v", err)
	}
	if _, err := s.Load(ctx, rec); !errors.Is(err, context.Canceled) {
		t.Errorf("Load: %v", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v", err)
	}
	if got := entries(t, s.Dir()); len(got) != 0 {
		t.Errorf("directory holds %q", got)
	}
}

func TestListAndSweep(t *testing.T) {
	t.Parallel()
	dir := storeDir(t)
	s, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []string{"b.json", "a.json"} {
		if err := s.Create(ctx, n, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(dir, tmpPrefix+"old")
	young := filepath.Join(dir, tmpPrefix+"young")
	for _, p := range []string{old, young, filepath.Join(dir, ".other")} {
		os.WriteFile(p, []byte("partial"), 0o600)
	}
	os.Mkdir(filepath.Join(dir, "subdir"), 0o700)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	got, err := s.List(ctx)
	if err != nil || strings.Join(got, ",") != "a.json,b.json" {
		t.Errorf("List = %q, %v", got, err)
	}
	s.Close()

	s2, err := OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Error("OpenFile did not sweep an old temporary file")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("OpenFile swept a young temporary file another process may be writing")
	}
}

// TestFromURL changes the working directory, so it is not parallel.
func TestFromURL(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "abs")
	wd := t.TempDir()
	t.Chdir(wd)
	tests := []struct {
		url  string
		want string
	}{
		{"file://" + abs, abs},
		{"file://./rel/store", filepath.Join(wd, "rel", "store")},
		{"file:opaque/store", filepath.Join(wd, "opaque", "store")},
	}
	for _, tc := range tests {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		s, err := FromURL(u)
		if err != nil {
			t.Errorf("FromURL(%s): %v", tc.url, err)
			continue
		}
		s.Close()
		if st, err := os.Stat(tc.want); err != nil || !st.IsDir() {
			t.Errorf("FromURL(%s) did not create %s: %v", tc.url, tc.want, err)
		}
	}
}
