// Package storetest is the conformance suite every key store backend passes
// (the embedded file store, S3, OSS), in the manner of testing/fstest: a
// non-test package that backend tests import and run against a fresh store.
//
// The contract it checks is the one the service relies on (DESIGN.md §3): a
// record is created once under its name and never overwritten, reads come
// back byte for byte, and failures are reported with errors a caller can
// test with errors.Is (fs.ErrExist, fs.ErrNotExist, context.Canceled).
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/record"
)

// Store is the key store contract.
type Store interface {
	// Create stores data under name unless name exists, in which case it
	// fails with an error wrapping fs.ErrExist and leaves the stored bytes
	// alone. On any failure nothing is stored.
	Create(ctx context.Context, name string, data []byte) error
	// Load returns the bytes stored under name; a missing name gives an
	// error wrapping fs.ErrNotExist.
	Load(ctx context.Context, name string) ([]byte, error)
	// List returns the names of all records.
	List(ctx context.Context) ([]string, error)
	// Close releases the store's resources.
	Close() error
}

// Prompt bounds how long an operation on a cancelled context may take.
const Prompt = 2 * time.Second

// Concurrency is how many goroutines race to create one name.
const Concurrency = 8

// Run runs the suite. open returns a new, empty store on each call (a fresh
// directory, bucket or prefix); Run closes every store it opens, so open
// must not.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	get := func(t *testing.T) Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		f    func(t *testing.T, s Store)
	}{
		{"CreateOnly", testCreateOnly},
		{"LoadMissing", testLoadMissing},
		{"ConcurrentCreate", testConcurrentCreate},
		{"RoundTrip", testRoundTrip},
		{"List", testList},
		{"InvalidNames", testInvalidNames},
		{"Corrupt", testCorrupt},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, get(t))
		})
	}
}

// Name returns a record name of the production form (<PubMd5>.json) made
// from i, so that different tests and runs do not share names by accident.
func Name(i int) string {
	return fmt.Sprintf("%032x.json", 0x5eed0000+i)
}

func load(t *testing.T, s Store, name string) []byte {
	t.Helper()
	got, err := s.Load(context.Background(), name)
	if err != nil {
		t.Fatalf("Load(%q): %v", name, err)
	}
	return got
}

func mustCreate(t *testing.T, s Store, name string, data []byte) {
	t.Helper()
	if err := s.Create(context.Background(), name, data); err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
}

func testCreateOnly(t *testing.T, s Store) {
	ctx := context.Background()
	name := Name(1)
	first := []byte(`{"Version":1,"n":"first"}`)
	mustCreate(t, s, name, first)

	err := s.Create(ctx, name, []byte(`{"Version":1,"n":"second"}`))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create with other bytes = %v; want an error wrapping fs.ErrExist", err)
	}
	// The same bytes again are still a second create: a record is created
	// once, whatever it holds.
	err = s.Create(ctx, name, first)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create with the same bytes = %v; want an error wrapping fs.ErrExist", err)
	}
	if got := load(t, s, name); !bytes.Equal(got, first) {
		t.Fatalf("after the refused Creates, Load = %q; want the first bytes %q", got, first)
	}
}

func testLoadMissing(t *testing.T, s Store) {
	_, err := s.Load(context.Background(), Name(2))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing record = %v; want an error wrapping fs.ErrNotExist", err)
	}
	if errors.Is(err, fs.ErrExist) {
		t.Fatalf("Load of a missing record = %v; it must not wrap fs.ErrExist", err)
	}
}

func testConcurrentCreate(t *testing.T, s Store) {
	name := Name(3)
	errs := make([]error, Concurrency)
	data := make([][]byte, Concurrency)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range Concurrency {
		data[i] = fmt.Appendf(nil, `{"Version":1,"writer":%d}`, i)
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = s.Create(context.Background(), name, data[i])
		}()
	}
	start.Done()
	done.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both created %s", winner, i, name)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v; want success or an error wrapping fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	if got := load(t, s, name); !bytes.Equal(got, data[winner]) {
		t.Fatalf("Load = %q; want the winner's bytes %q", got, data[winner])
	}
}

func testRoundTrip(t *testing.T, s Store) {
	big := make([]byte, 200<<10)
	rand.Read(big)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct {
		what string
		data []byte
	}{
		{"json", []byte(`{"Version":1,"PubMd5":"629bf4fd8104eda171135bcb0f77a10b","Csr":"-----BEGIN CERTIFICATE REQUEST-----\n"}`)},
		{"200KiB", big},
		{"non-UTF-8", []byte{0xff, 0xfe, 0x00, 0xc3, 0x28, '\r', '\n', 0x80, 0xed, 0xa0, 0x80}},
		{"every byte", all},
		{"one byte", []byte{0}},
	}
	for i, c := range cases {
		name := Name(100 + i)
		mustCreate(t, s, name, c.data)
		if got := load(t, s, name); !bytes.Equal(got, c.data) {
			t.Errorf("%s: Load returned %d bytes that differ from the %d created", c.what, len(got), len(c.data))
		}
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	got, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List of an empty store: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("List of an empty store = %q; want none", got)
	}
	var want []string
	for i := range 5 {
		name := Name(200 + i)
		mustCreate(t, s, name, fmt.Appendf(nil, "record %d", i))
		want = append(want, name)
	}
	// A refused create adds nothing.
	if err := s.Create(ctx, want[0], []byte("again")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v; want fs.ErrExist", err)
	}
	got, err = s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("List = %q; want exactly %q", got, want)
	}
}

// InvalidNames are names every store must refuse: they could escape the
// store, hide in it, or are empty.
var InvalidNames = []string{"../x", ".hidden", "a/b", "", "..", "/abs", `a\b`, "x/../y"}

func testInvalidNames(t *testing.T, s Store) {
	ctx := context.Background()
	for _, name := range InvalidNames {
		if err := s.Create(ctx, name, []byte("x")); err == nil {
			t.Errorf("Create(%q) succeeded; want it refused", name)
		}
		if _, err := s.Load(ctx, name); err == nil {
			t.Errorf("Load(%q) succeeded; want it refused", name)
		}
	}
	got, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("after refused Creates, List = %q; want none", got)
	}
}

func testCorrupt(t *testing.T, s Store) {
	name := Name(4)
	garbage := []byte("\x00\x01not json at all\xff{\"Version\":")
	mustCreate(t, s, name, garbage)
	got := load(t, s, name)
	if !bytes.Equal(got, garbage) {
		t.Fatalf("Load = %q; want the stored bytes %q exactly", got, garbage)
	}
	if _, err := record.Unmarshal(got); !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("record.Unmarshal of garbage = %v; want an error wrapping record.ErrCorrupt", err)
	}
}

func testCancelled(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	name := Name(5)
	check := func(op string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if d := time.Since(start); d > Prompt {
			t.Errorf("%s on a cancelled context took %v; want at most %v", op, d, Prompt)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a cancelled context = %v; want an error wrapping context.Canceled", op, err)
		}
	}
	check("Create", func() error { return s.Create(ctx, name, []byte("x")) })
	check("Load", func() error { _, err := s.Load(ctx, name); return err })
	check("List", func() error { _, err := s.List(ctx); return err })
	if _, err := s.Load(context.Background(), name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a cancelled Create, Load = %v; want fs.ErrNotExist", err)
	}
}
